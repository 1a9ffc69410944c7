"""Tell automated mail (bounces, auto-replies, reports, bulk) from human mail, from headers alone."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import cast

from monitor.mail.headers import HeaderBlock, addresses, decoded, first_mailbox, header_text
from monitor.mail.subject import has_reply_prefix

REASONS: tuple[str, ...] = (
    "auto_reply",
    "bounce",
    "feedback_report",
    "read_receipt",
    "out_of_office",
    "bulk",
    "no_reply_sender",
    "auto_generated",
    "spam",
)
"""Every value :attr:`Verdict.automated` can take."""

# Which reason wins when several apply: the most specific first.  A feedback report or a bounce is
# usually also auto-generated, sent with a null Return-Path and from a no-reply address; the reason
# should name what the message *is*.  auto_reply and out_of_office share a rank: an out-of-office
# subject is the more telling of the two, so it is listed first.
_PRECEDENCE: tuple[str, ...] = (
    "spam",
    "feedback_report",
    "bounce",
    "read_receipt",
    "out_of_office",
    "auto_reply",
    "auto_generated",
    "no_reply_sender",
    "bulk",
)

DEFAULT_NO_REPLY: tuple[str, ...] = (
    "noreply*",
    "no-reply*",
    "no_reply*",
    "donotreply*",
    "do-not-reply*",
    "do_not_reply*",
    "mailer-daemon",
    "postmaster",
)
"""Default ``no_reply_senders``.

A pattern without ``@`` is matched against the sender's local part, one with ``@`` against the whole
address; both case-insensitively, with :mod:`fnmatch` wildcards (``*``, ``?``, ``[...]``).  A pattern
without wildcards therefore matches exactly: ``postmaster`` matches ``postmaster@example.com`` but not
``postmaster-team@example.com``; ``*@notifications.example.com`` matches any sender of that domain.
"""

HEADERS_USED: tuple[str, ...] = (
    "From",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Return-Path",
    "Content-Type",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Auto-Response-Suppress",
    "X-Apple-Action",
    "X-Mailer",
    "X-Failed-Recipients",
    "X-MS-Exchange-Message-Is-Ndr",
    "Precedence",
    "List-Id",
    "List-Post",
    "List-Unsubscribe",
    "Mailing-List",
    "X-BeenThere",
    "Feedback-ID",
    "X-Bulkmail",
    "X-Spam-Flag",
    "X-Spam-Status",
    "X-Spam",
    "X-Spamd-Result",
    "X-Forefront-Antispam-Report",
    "X-MS-Exchange-Organization-SCL",
)
"""Every header :func:`classify` reads: an IMAP source that fetches only these loses nothing."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a message is automated, why, and which weak signals were seen without deciding."""

    automated: str | None
    """The winning reason (one of :data:`REASONS`), None for human mail."""
    hints: tuple[str, ...] = ()
    """Weak signals seen that did not decide, e.g. ``precedence:bulk``, ``list-id``."""
    bulk_precedence: bool = False
    """``Precedence: bulk|junk|list`` on a message that is no discussion-list post: bulk mail unless it
    was addressed to the team personally, which only the team's addresses can tell (see
    :meth:`monitor.engine.team.TeamContext.automated`)."""

    @property
    def is_automated(self) -> bool:
        """True when the message must never open an awaiting item nor count as a response."""
        return self.automated is not None


# --- RFC 3834 §5: Auto-Submitted -----------------------------------------------------------------

_TOKEN_END = re.compile(r"[\s;()]")


def auto_submitted_token(value: str | None) -> str | None:
    """The RFC 3834 §5 ``Auto-Submitted`` token, lower-cased, without comments or parameters."""
    if value is None:
        return None
    text = str(value)
    pos, end = 0, len(text)
    # §5: auto-submitted-field = "Auto-Submitted:" [CFWS] auto-submitted [CFWS]; the keyword may be
    # preceded by folding white space and RFC 5322 §3.2.2 comments, which nest and allow quoted-pairs.
    while pos < end:
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "(":
            pos = _skip_comment(text, pos)
        else:
            break
    match = _TOKEN_END.search(text, pos)
    token = text[pos : match.start() if match else end].strip().lower()
    return token or None


def _skip_comment(text: str, pos: int) -> int:
    depth = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return pos


# --- subjects --------------------------------------------------------------------------------------

# Out-of-office / automatic-reply subject prefixes as mail systems write them (Exchange/Outlook in its
# UI languages, Gmail vacation, Apple iCloud, Zimbra, Lotus Notes).  Matched at the very start of the
# decoded subject and followed by a colon (or nothing): a human's "Re: Automatic reply: ..." is a
# human message, and a human subject like "Out of office next week" must stay human.
_OOF_PREFIXES: tuple[str, ...] = (
    # English
    r"out of (the )?office( auto ?reply| autoreply| reply| notice| notification)?",
    r"automatic reply",
    r"auto(matic|mated)? ?[- ]?(reply|response|respons|answer)",
    r"autoreply",
    r"away from (the )?office",
    r"on vacation",
    r"vacation (reply|notice|message|auto ?reply)",
    r"absence (notice|notification)",
    # German
    r"abwesenheitsnotiz",
    r"abwesenheit",
    r"automatische antwort",
    r"automatische r[üu]ckantwort",
    r"abwesend",
    # French
    r"r[ée]ponse automatique",
    r"r[ée]ponse automatique d'absence du bureau",
    r"absence du bureau",
    r"absent(e)? du bureau",
    r"message d'absence",
    # Spanish
    r"respuesta autom[áa]tica",
    r"fuera de la oficina",
    r"respuesta de fuera de la oficina",
    # Dutch
    r"afwezig",
    r"automatisch antwoord",
    r"niet aanwezig",
    # Italian
    r"risposta automatica",
    r"fuori sede",
    r"fuori ufficio",
    # Portuguese
    r"resposta autom[áa]tica",
    r"ausente do escrit[óo]rio",
    r"fora do escrit[óo]rio",
    # Scandinavian, Finnish
    r"autosvar",
    r"automatisk svar",
    r"automatiskt svar",
    r"fr[åa]nvaro",
    r"frav[æa]r",
    r"automaattinen vastaus",
    r"poissa toimistolta",
    # Central / Eastern European, Baltic
    r"automatyczna odpowied[źz]",
    r"automatick[áa] odpov[ěe][ďd]",
    r"automatikus v[áa]lasz",
    r"r[ăa]spuns automat",
    r"automātiska atbilde|automatiska atbilde",
    r"[āa]rpus biroja( atra[šs]an[āa]s)?( autom[āa]tiska atbilde)?",
    r"automatinis atsakymas",
    # Greek, Russian, Ukrainian, Turkish
    r"αυτόματη απάντηση",
    r"автоответ",
    r"автоматический ответ",
    r"автоматична відповідь",
    r"otomatik yan[\u0131i]t",
    r"otomatik cevap",
    # East Asian
    r"自動応答",
    r"自動返信",
    r"自动回复",
    r"自動回覆",
    r"자동 ?응답",
)
_OOF_SUBJECT = re.compile(r"^\s*(?:" + "|".join(_OOF_PREFIXES) + r")\s*(?:[:\uff1a]|$)", re.IGNORECASE)

# Non-standard bounces (those without a multipart/report) say what they are in the subject, in words
# MTAs generate (Postfix, Sendmail, Exim, qmail, Exchange in its UI languages, Gmail, Notes, GroupWise,
# MDaemon, InterScan...).  A customer may well write "Delivery problem" or "Returned mail" about a
# parcel, so a subject decides alone only in the MTAs' own fixed forms: a prefix they put before the
# original subject (mostly with a colon), or a fixed subject they use whole.  Looser phrases only
# count beside another sign of a machine sender (null Return-Path, Auto-Submitted).
_BOUNCE_PREFIXES: tuple[str, ...] = (
    r"undelivered mail returned to sender",
    r"delivery status notification",
    r"(mail|message) delivery (failed|failure|has failed)\s*[:(-]",
    r"mail delivery failed",
    r"delivery notification: delivery has failed",
    r"failure notice",
    r"undeliver(able|ed)( mail| message)?\s*:",
    r"returned mail\s*:",
    r"non[- ]?deliver(y|able)( report| notification)?\s*:",
    r"failed mail\s*:",
    r"delivery failure\s*:",
    r"warning: could not send message",
    r"postmaster notify",
    r"delayed mail \(still being retried\)",
    # Exchange and other MTAs in their UI languages
    r"non remis\s*:",
    r"remise diff[ée]r[ée]e\s*:",
    r"unzustellbar\s*:",
    r"nicht zustellbar\s*:",
    r"ihre (e-?)?mail konnte nicht zugestellt werden",
    r"onbestelbaar\s*:",
    r"no se puede entregar\s*:",
    r"non recapitabile\s*:",
    r"n[ãa]o [ée] poss[íi]vel entregar\s*:",
    r"kan inte levereras\s*:",
    r"kan ikke leveres\s*:",
    r"ei voida toimittaa\s*:",
    r"nie mo[żz]na dostarczy[ćc]\s*:",
    r"nedoru[čc]iteln[ée]\s*:",
    r"не удается доставить\s*:|недоставляемое сообщение",
    r"配信不能\s*[:\uff1a]",
    r"无法投递\s*[:\uff1a]|無法傳遞\s*[:\uff1a]",
)
_BOUNCE_WHOLE: tuple[str, ...] = (
    r"mail could not be delivered",
    r"message (could not be|not) delivered",
    r"(mail )?delivery failure( notification| notice| report)?",
    r"mail delivery (warning|problem|error|report)",
    r"returned mail\s*-\s*error during delivery",
    r"mail (system )?error( - returned mail)?",
    r"delivery status",
    r"undeliverable( mail| message)?",
    r"non[- ]?delivery( report| notification)?",
)
_BOUNCE_WEAK: tuple[str, ...] = (
    r"undeliver",
    r"not (be )?delivered",
    r"(mail|message|delivery) (report|problem|error|warning|failure|failed|has failed|delay(ed)?)",
    r"return(ed)? to sender",
    r"returned (mail|message)",
    r"could not send",
    r"(message|mail) (was )?rejected",
    r"rejected\s*:",
    r"no such (user|recipient|mailbox)",
    r"user unknown",
    r"mailbox (unavailable|full|is full)",
    r"failure notice",
    r"delivery status",
    r"bounced?\b",
)
_BOUNCE_STRONG_SUBJECT = re.compile(
    r"^\s*(?:(?:" + "|".join(_BOUNCE_PREFIXES) + r")"
    r"|(?:" + "|".join(_BOUNCE_WHOLE) + r")\s*(\([^)]*\))?[.!]*\s*$)",
    re.IGNORECASE,
)
_BOUNCE_WEAK_SUBJECT = re.compile("|".join(_BOUNCE_PREFIXES + _BOUNCE_WEAK), re.IGNORECASE)

# RFC 5965 §3 leaves the subject of an ARF report free; Microsoft's JMRP (Hotmail/Outlook.com)
# complaint reports arrive as multipart/mixed, named only by their subject.
_FEEDBACK_SUBJECT = re.compile(
    r"^\s*(complaint about message from\s+\S|(email )?feedback report for ip\b|abuse report\s*:)",
    re.IGNORECASE,
)

# RFC 8098 §3: an MDN's subject is free text; user agents write "Read:", "Gelesen:", "Lu :"... Such a
# prefix alone could be a human typing "Read: chapter 3", so it only counts beside another signal.
_READ_SUBJECT = re.compile(
    r"^\s*(read|not read|gelesen|nicht gelesen|lu|non lu|le[íi]do|no le[íi]do|gelezen|niet gelezen|letto"
    r"|lido|läst|læst|lest|luettu|przeczytano|přečteno|прочитано|已读|開封済み)\s*[:\uff1a]",
    re.IGNORECASE,
)

# Programs that announce themselves in X-Mailer only when they are an auto-responder.
_AUTORESPONDER_MAILER = re.compile(
    r"\b(vacation|auto[- ]?respond(er)?|auto[- ]?reply|autoreply|out of office)\b", re.IGNORECASE
)

# Mail-system senders: RFC 5321 §4.5.5 names the null reverse-path; the From of a non-delivery report
# is the MTA's own mailbox (RFC 2142 §5 postmaster; MAILER-DAEMON by tradition).
_MTA_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "post_master", "mail-daemon", "mailerdaemon", "mmdf", "mdaemon"}
)
_MTA_DISPLAY_NAME = re.compile(
    r"\b(mail delivery (sub)?system|mail ?delivery ?service|mail administrator|mailer[- ]daemon"
    r"|postmaster|mail system|delivery subsystem)\b",
    re.IGNORECASE,
)

_FALSY = frozenset({"no", "false", "0", "off", "none", ""})

_REPORT_TYPES = {
    # RFC 3464 §2 / RFC 6533 §6: delivery status notifications.
    "delivery-status": "bounce",
    "global-delivery-status": "bounce",
    # RFC 5965 §2: Abuse Reporting Format.
    "feedback-report": "feedback_report",
    # RFC 8098 §3 / RFC 6533 §7: message disposition notifications (read receipts).
    "disposition-notification": "read_receipt",
    "global-disposition-notification": "read_receipt",
}
_REPORT_PARTS = {
    "message/delivery-status": "bounce",
    "message/global-delivery-status": "bounce",
    "message/feedback-report": "feedback_report",
    "message/disposition-notification": "read_receipt",
    "message/global-disposition-notification": "read_receipt",
}


# Mass-mailing software that names itself in X-Mailer (seen on 2002-era newsletters and still in use).
_BULK_MAILER = re.compile(
    r"\b(?:accucast|lyris|listmanager|groupmail|sendemail|mailking|mail::bulkmail|bulk ?mailer|"
    r"massmail|mass mailer|phplist|mailchimp|sendblaster|atomic mail sender|supermailer|"
    r"campaign ?monitor|constant ?contact|e-?mail marketing|emailmarketer|interspire)\b",
    re.IGNORECASE,
)
# Tracking / VERP sender addresses of mass mailers: "Online#3.19578.34-...@", "R-1-270241-...@".
_TRACKING_LOCAL_PART = re.compile(r"^(?:[a-z]+#\d+\.\d+\.\d+-|r-\d+-\d+-)", re.IGNORECASE)
_NEWSLETTER_LOCAL_PARTS = frozenset({"newsletter", "newsletters", "news"})
_SCL_SPAM = 5
"""Exchange's spam confidence level from which a message counts as spam (5-9: the junk-mail range)."""
_SCL = re.compile(r"-?\d+")
_SPAM_STATUS_YES = re.compile(r"\s*yes\b", re.IGNORECASE)
_RSPAMD_SPAM = re.compile(r"\s*default:\s*true\b", re.IGNORECASE)
_FOREFRONT_SPAM = re.compile(r"\bSFV:SPM\b", re.IGNORECASE)
_LIST_POST_NO = re.compile(r"(\([^)]*\)\s*)*no\b.*", re.IGNORECASE)


def spam_verdict(msg: Message) -> bool:
    """Whether the mail system marked the message as spam (SpamAssassin, rspamd, Microsoft 365)."""
    return _spam_verdict(msg, _field_names(msg))


_SPAM_HEADERS = frozenset(
    {
        "x-spam-flag",
        "x-spam-status",
        "x-spam",
        "x-spamd-result",
        "x-forefront-antispam-report",
        "x-ms-exchange-organization-scl",
    }
)


def _spam_verdict(msg: Message, names: _Names) -> bool:
    if not isinstance(names, _EveryName) and _SPAM_HEADERS.isdisjoint(names):
        return False  # most mail carries none of them
    if _text(msg, "X-Spam-Flag").strip().lower() == "yes":
        return True
    if _SPAM_STATUS_YES.match(_text(msg, "X-Spam-Status")):
        return True
    if _text(msg, "X-Spam").strip().lower() in {"yes", "true"}:
        return True
    # rspamd: "X-Spamd-Result: default: True [12.40 / 15.00]; ..." (True: the action is not "no action")
    if _RSPAMD_SPAM.match(_text(msg, "X-Spamd-Result")):
        return True
    if _FOREFRONT_SPAM.search(_text(msg, "X-Forefront-Antispam-Report")):
        return True
    scl = _text(msg, "X-MS-Exchange-Organization-SCL").strip()
    return bool(_SCL.fullmatch(scl)) and int(scl) >= _SCL_SPAM


def classify(msg: Message, *, no_reply_senders: Sequence[str] = DEFAULT_NO_REPLY) -> Verdict:
    """Classify one parsed message (headers alone suffice); never raises on malformed input."""
    try:
        return _classify(msg, no_reply_senders)
    except Exception:  # a message we cannot read is treated as human, never a crash
        return Verdict(None, ("unreadable",))


def _classify(msg: Message, no_reply_senders: Sequence[str]) -> Verdict:
    reasons: set[str] = set()
    hints: list[str] = []
    # Most mail is a person's, without most of the headers read here: each is looked up only when the
    # message has a field of that name (see _field_names), which reads exactly as a lookup that finds none.
    names = _field_names(msg)

    subject = _text(msg, "Subject") if "subject" in names else ""
    # A subject that quotes a phrase after "Re:"/"Fwd:" is someone replying to or forwarding it.
    prefixed = has_reply_prefix(subject)
    from_text = (_raw(msg, "From") or "") if "from" in names else ""
    from_addr, from_name = first_mailbox(from_text)
    from_local = from_addr.rpartition("@")[0] if "@" in from_addr else from_addr
    # "From: <>" copies the null reverse-path (RFC 5321 §4.5.5) into the header: only MTAs do that.
    null_from = "<>" in from_text.replace(" ", "")
    from_is_mta = null_from or from_local in _MTA_LOCAL_PARTS or bool(_MTA_DISPLAY_NAME.search(from_name))
    null_return_path = "return-path" in names and _null_return_path(msg)
    token = auto_submitted_token(_text(msg, "Auto-Submitted")) if "auto-submitted" in names else None
    precedence = _text(msg, "Precedence").strip().lower() if "precedence" in names else ""
    mailer = _text(msg, "X-Mailer") if "x-mailer" in names else ""

    # --- RFC 6522 multipart/report: the report type is in the header, no body needed -------------
    report = _report_reason(msg)
    if report:
        reasons.add(report)
    if not prefixed and _FEEDBACK_SUBJECT.search(subject):
        reasons.add("feedback_report")

    # --- delivery status notifications without (or besides) a multipart/report -------------------
    # Exim's X-Failed-Recipients and Exchange's X-MS-Exchange-Message-Is-Ndr only appear on NDRs; the
    # MTA's own mailbox (RFC 2142 §5 postmaster, MAILER-DAEMON) writing to us is a delivery report.
    if ("x-failed-recipients" in names and _present(msg, "X-Failed-Recipients")) or (
        "x-ms-exchange-message-is-ndr" in names and _truthy(_text(msg, "X-MS-Exchange-Message-Is-Ndr"))
    ):
        reasons.add("bounce")
    if from_is_mta or (not prefixed and _BOUNCE_STRONG_SUBJECT.search(subject)):
        reasons.add("bounce")

    # --- RFC 3834 §5 Auto-Submitted: any token but "no" --------------------------------------------
    if token is not None and token != "no":
        # "auto-replied" marks responses to a message; "auto-generated" (and extensions such as RFC
        # 5436's "auto-notified") everything else a machine wrote.
        reasons.add("auto_reply" if token == "auto-replied" else "auto_generated")

    # --- auto-responders ---------------------------------------------------------------------------
    # X-Autoreply (Gmail vacation, Yahoo), X-Autorespond / X-Autoresponder (cPanel, Plesk, Zimbra),
    # X-Apple-Action: VACATION (iCloud), Precedence: auto_reply (qmail's autorespond and others).
    # X-Auto-Response-Suppress is the *request* not to be auto-answered (MS-OXCMAIL §2.2.3.2.14),
    # which Outlook and Exchange also put on mail people write: a hint only.
    for name, lower in _AUTORESPONDER_HEADERS:
        if lower in names and _present(msg, name) and _truthy(_text(msg, name)):
            reasons.add("auto_reply")
    if "x-apple-action" in names and _text(msg, "X-Apple-Action").strip().lower() == "vacation":
        reasons.add("auto_reply")
    if _AUTORESPONDER_MAILER.search(mailer):
        reasons.add("auto_reply")
    if precedence in {"auto_reply", "auto-reply", "autoreply"}:
        reasons.add("auto_reply")
    if "x-auto-response-suppress" in names and _present(msg, "X-Auto-Response-Suppress"):
        hints.append("x-auto-response-suppress")
    out_of_office = bool(_OOF_SUBJECT.search(subject))
    if out_of_office:
        reasons.add("out_of_office")

    # --- RFC 5321 §4.5.5 null reverse-path ---------------------------------------------------------
    # DSNs, MDNs and (RFC 3834 §3.3) auto-responses are sent with MAIL FROM:<>, which final delivery
    # records as Return-Path: <> (RFC 5321 §4.4).  What it is, the subject or other signals tell.
    if null_return_path:
        reasons.add("auto_generated")
    machine = null_return_path or token not in (None, "no")
    replying = out_of_office or "auto_reply" in reasons
    if machine and not replying and _BOUNCE_WEAK_SUBJECT.search(subject):
        reasons.add("bounce")
    # RFC 8098 §3: an MDN's subject is free text; a "Read:" prefix alone could be a person's subject.
    if (machine or report == "read_receipt") and _READ_SUBJECT.search(subject):
        reasons.add("read_receipt")

    # --- configurable no-reply senders ------------------------------------------------------------
    if from_addr and matches_sender_pattern(from_addr, no_reply_senders):
        reasons.add("no_reply_sender")

    # --- bulk senders ------------------------------------------------------------------------------
    if precedence in _BULK_PRECEDENCE:
        hints.append(f"precedence:{precedence}")
    bulk, listed = _bulk_sender(msg, names, from_addr, hints)
    if bulk:
        reasons.add("bulk")
    # Mass-mailing software, tracking (VERP) senders and newsletter mailboxes: mail nobody answers.
    return_path = first_mailbox(_raw(msg, "Return-Path"))[0] if "return-path" in names else ""
    return_local = return_path.rpartition("@")[0]
    if (
        _BULK_MAILER.search(mailer)
        or _TRACKING_LOCAL_PART.match(from_local)
        or _TRACKING_LOCAL_PART.match(return_local)
        or from_local.lower() in _NEWSLETTER_LOCAL_PARTS
    ):
        reasons.add("bulk")

    # --- the mail system's own spam verdict --------------------------------------------------------
    if _spam_verdict(msg, names):
        reasons.add("spam")

    if reasons:
        for reason in _PRECEDENCE:
            if reason in reasons:
                return Verdict(reason, tuple(hints)) if hints else _AUTOMATED[reason]
    # Precedence alone does not decide: list software adds it to human mail sent to the team. Whether
    # this message was (a person writing to the team) is for the team's addresses to tell.
    if precedence in _BULK_PRECEDENCE:
        if listed is None:
            listed = _discussion_list(msg, names, from_addr)
        return Verdict(None, tuple(hints), bulk_precedence=not listed)
    return Verdict(None, tuple(hints)) if hints else _HUMAN


_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_AUTORESPONDER_HEADERS = tuple(
    (name, name.lower()) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")
)
# Verdicts are immutable: the common ones, without hints, are made once.
_HUMAN = Verdict(None)
_AUTOMATED = {reason: Verdict(reason) for reason in REASONS}


def _bulk_sender(msg: Message, names: _Names, from_addr: str, hints: list[str]) -> tuple[bool, bool | None]:
    """Whether the message comes from a bulk sender, and whether it is a discussion-list post (None when
    that did not matter here); appends the weak list signals to ``hints``.

    Decided from the SpamAssassin easy_ham corpus (2,500 human messages, 2002): 1,572 carry
    List-Unsubscribe, added by the list server to human posts.  1,441 of them are Mailman/other
    discussion lists that also carry List-Post (RFC 2369 §3.4), 127 are Yahoo Groups / ezmlm posts
    that carry the older ``Mailing-List:`` header instead, 3 are a LetterRip list that re-sends the
    post with ``Sender:`` set to the list address it was sent ``To:``.  Only one (a Ryanair
    newsletter) is a real bulk sender: List-Unsubscribe and none of these discussion-list markers.
    List-Id is *not* a discussion marker: newsletter platforms (Mailchimp, Campaign Monitor) set it.
    ``Precedence: bulk|junk|list`` and ``List-Id`` alone are hints only: list software adds them to
    human mail.
    """
    if "list-id" in names and _present(msg, "List-Id"):
        hints.append("list-id")
    # Gmail's Feedback-ID is set by bulk senders (ESPs) for complaint-rate tracking, never by MUAs;
    # X-Bulkmail is the mark of the Mail::Bulkmail mass mailer.
    if ("feedback-id" in names and _present(msg, "Feedback-ID")) or (
        "x-bulkmail" in names and _present(msg, "X-Bulkmail")
    ):
        return True, None
    if "list-unsubscribe" not in names or not _present(msg, "List-Unsubscribe"):
        return False, None
    if _discussion_list(msg, names, from_addr):
        hints.append("list-unsubscribe")
        return False, True
    return True, False


def _discussion_list(msg: Message, names: _Names, from_addr: str) -> bool:
    """Whether the message is a post redistributed by a discussion list (someone wrote it)."""
    list_post = _text(msg, "List-Post").strip() if "list-post" in names else ""
    # RFC 2369 §3.4: "List-Post: NO" marks an announcement-only list, i.e. a bulk sender.
    if list_post and not _LIST_POST_NO.fullmatch(list_post):
        return True
    # ezmlm and Yahoo Groups (before they adopted RFC 2369 List-Post) write "Mailing-List: list X".
    if "mailing-list" in names and _present(msg, "Mailing-List"):
        return True
    sender = first_mailbox(_raw(msg, "Sender"))[0] if "sender" in names else ""
    been_there = first_mailbox(_raw(msg, "X-BeenThere"))[0] if "x-beenthere" in names else ""
    if not sender and not been_there:
        return False  # no list address to look for among the recipients
    # A list server that resends a post addressed to the list names the list as Sender (RFC 5322
    # §3.6.2: the agent responsible for the transmission), distinct from the human From.
    recipients = addresses((_raw(msg, "To"), _raw(msg, "Cc")))
    if sender and sender != from_addr and sender in recipients:
        return True
    # Mailman (2.0, before it wrote List-Post) names the list's posting address in X-BeenThere: a post
    # someone addressed To or Cc that address is a discussion post (69 of easy_ham's ILUG posts).
    if been_there and been_there in recipients:
        return True
    # Majordomo, Mailman and ezmlm send a post with Sender (or the envelope) set to the list's owner or
    # bounce address, named after the list: "owner-new-httpd@", "new-httpd-owner@", "ilug-admin@",
    # "x-bounces@". A post addressed to that list is a discussion post (flanker's Apache new-httpd mail).
    owner = _list_of_owner(sender.rpartition("@")[0]) if sender else None
    return owner is not None and any(r.rpartition("@")[0] == owner for r in recipients)


_OWNER_LOCAL_PART = re.compile(
    r"^(?:owner-(?P<a>.+)|(?P<b>.+?)-(?:owner|admin|request|bounces))$", re.IGNORECASE
)


def _list_of_owner(local: str) -> str | None:
    """The list a list-owner or bounce mailbox belongs to: ``owner-x`` and ``x-owner`` -> ``x``."""
    match = _OWNER_LOCAL_PART.match(local)
    if match is None:
        return None
    return (match.group("a") or match.group("b")).lower()


def _report_reason(msg: Message) -> str | None:
    """The reason a multipart/report (RFC 6522) or its report part gives, if any."""
    content_type = msg.get_content_type()
    if content_type == "multipart/report":
        report_type = str(msg.get_param("report-type", "") or "").strip().lower()
        if report_type in _REPORT_TYPES:
            return _REPORT_TYPES[report_type]
    if content_type in _REPORT_PARTS:
        return _REPORT_PARTS[content_type]
    if msg.is_multipart():
        # The body is there (maildir/mbox): a report part anywhere decides, also when a gateway
        # rewrote the outer type (e.g. multipart/mixed around the DSN).
        for part in _walk(msg, limit=50):
            part_type = part.get_content_type()
            if part_type in _REPORT_PARTS:
                return _REPORT_PARTS[part_type]
    if content_type == "multipart/report":
        # An unknown report-type (RFC 8460 TLS reports...) or a missing one: a machine wrote it.
        return "auto_generated"
    return None


def _walk(msg: Message, limit: int) -> Iterator[Message]:
    """The message's parts, depth first, not descending into attached messages, at most ``limit``."""
    stack = [msg]
    seen = 0
    while stack and seen < limit:
        part = stack.pop(0)
        seen += 1
        yield part
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, Message))


# --- header access that never raises ---------------------------------------------------------------


class _EveryName:
    """The field names of a message whose lookups this module does not know: it may have any field."""

    def __contains__(self, name: object) -> bool:
        return True


_EVERY_NAME = _EveryName()
_Names = Collection[str] | _EveryName


def _field_names(msg: Message) -> _Names:
    """The lower-cased names of ``msg``'s fields, to skip lookups of the fields it does not have.

    A field not named here reads as missing (``get`` gives None); a name in it may still read as
    missing. A class whose lookups are not the standard library's or :class:`HeaderBlock`'s own may
    have any field.
    """
    cls = type(msg)
    if cls.get is HeaderBlock.get:
        return cast(HeaderBlock, msg).field_names()
    if cls.get is Message.get and cls.__iter__ is Message.__iter__:
        return {name.lower() for name in msg}
    return _EVERY_NAME


def _raw(msg: Message, name: str) -> str | None:
    """A header's value as Unicode text, encoded-words left as they are (None when missing or broken)."""
    try:
        value = msg.get(name)
    except Exception:  # a broken header reads as missing
        return None
    if value is None:
        return None
    return header_text(value)


def _present(msg: Message, name: str) -> bool:
    try:
        return msg.get(name) is not None
    except Exception:
        return False


def _text(msg: Message, name: str) -> str:
    """A header's RFC 2047-decoded value with folding white space collapsed ('' when missing)."""
    try:
        return decoded(msg.get(name))
    except Exception:  # a broken header reads as missing
        return ""


def _truthy(value: str) -> bool:
    return value.strip().lower() not in _FALSY


def _null_return_path(msg: Message) -> bool:
    """RFC 5321 §4.4 / §4.5.5: ``Return-Path: <>``, which some MTAs record as ``<MAILER-DAEMON>``."""
    try:
        values = msg.get_all("Return-Path") or []
    except Exception:
        return False
    for value in values:
        text = decoded(value).strip().strip('"')
        if text in {"<>", ""} or text.lower() in {"<mailer-daemon>", "mailer-daemon"}:
            return True
    return False


def matches_sender_pattern(address: str, patterns: Sequence[str]) -> bool:
    """Whether ``address`` matches a ``no_reply_senders`` pattern (see :data:`DEFAULT_NO_REPLY`).

    A pattern with an ``@`` is matched against the whole address, any other against its local part
    (``fnmatchcase`` rules, pattern lower-cased); every message is checked, so the patterns are compiled
    once into one expression for each kind.
    """
    whole, local_part = _sender_matchers(tuple(patterns))
    if whole is not None and whole.match(address):
        return True
    local = address.rpartition("@")[0] if "@" in address else address
    return local_part is not None and local_part.match(local) is not None


@functools.lru_cache(maxsize=64)
def _sender_matchers(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    whole: list[str] = []
    local: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip().lower()
        if pattern:
            (whole if "@" in pattern else local).append(fnmatch.translate(pattern))
    return (
        re.compile("|".join(whole)) if whole else None,
        re.compile("|".join(local)) if local else None,
    )
