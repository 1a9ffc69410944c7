"""Realistic sample mail for ``replywatch demo``: a team's Maildir++ (INBOX, .Sent) dated relative to now."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr, getaddresses
from pathlib import Path

WAITING_MAX = timedelta(hours=12)
"""Unanswered mail younger than this is within any 24-hour deadline, in business or wall time."""
BREACHED_MIN = timedelta(days=7)
"""Unanswered (or late-answered) mail older than this is past a 24-hour business-time deadline.

Seven days hold one whole week of business hours (e.g. 5 x 8.5 h = 42.5 h), so the generator's verdicts
hold for any weekly calendar open at least 24 hours a week after its holidays in that week.
"""


@dataclass(frozen=True, slots=True)
class DemoMember:
    """A team member as the demo writes them in From headers."""

    name: str
    email: str


DEFAULT_MEMBERS: tuple[DemoMember, ...] = (
    DemoMember("Alice Smith", "alice@demo.example"),
    DemoMember("Bob Jones", "bob@demo.example"),
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the generator meant, to compare with what the engine makes of the same mail.

    Statuses follow ``replay``: ``answered_on_time`` (answered within 24 hours of wall time, hence of
    business time), ``answered_late`` (answered after more than :data:`BREACHED_MIN`), ``waiting``
    (unanswered for less than :data:`WAITING_MAX`) and ``breached`` (unanswered for more than
    :data:`BREACHED_MIN`), all for a ``reply_within: 24h`` rule.
    """

    root: Path
    now: datetime
    team_address: str
    inbox_messages: int
    """Files written to the INBOX (the maildir's root)."""
    sent_messages: int
    """Files written to ``.Sent``."""
    inbox_unseen: int
    inbox_unanswered: int
    customer_messages: int
    """Inbound human mail from customers, follow-ups included."""
    answered_on_time: int
    answered_late: int
    waiting: int
    breached: int
    automated: int
    """Auto-reply, newsletter and bounce: they never open an awaiting item."""
    internal: int
    """Mail between members."""
    follow_ups_while_open: int
    """Customer nudges in a conversation still waiting: they open no new awaiting item."""
    statuses: Mapping[str, str] = field(default_factory=dict)
    """Message-ID (no angle brackets) of each message that opens an awaiting item -> its status."""
    responded_by: Mapping[str, str] = field(default_factory=dict)
    """Message-ID of each answered awaiting item -> the address its first response came from."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Message-ID of each message that opens none -> why (``automated:bulk``, ``internal``...)."""

    @property
    def awaiting(self) -> int:
        """Awaiting items opened: one per customer message except nudges in open conversations."""
        return self.answered_on_time + self.answered_late + self.waiting + self.breached

    @property
    def unanswered(self) -> int:
        """Customers still without an answer, in or past their deadline."""
        return self.waiting + self.breached


@dataclass(frozen=True, slots=True)
class _Customer:
    name: str
    email: str
    utc_offset_hours: float
    user_agent: str

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_hours))


@dataclass(frozen=True, slots=True)
class _Reply:
    after: timedelta
    by: int | None
    """Index into the members (modulo their number), or None for the team address."""
    body: str


@dataclass(frozen=True, slots=True)
class _FollowUp:
    hours_ago: float
    body: str
    reply: _Reply | None = None


@dataclass(frozen=True, slots=True)
class _Case:
    customer: _Customer
    subject: str
    body: str
    hours_ago: float
    reply: _Reply | None
    follow_up: _FollowUp | None = None
    flagged: bool = False


_THUNDERBIRD = "Mozilla Thunderbird"
_APPLE = "Apple Mail (2.3774)"
_OUTLOOK = "Microsoft Outlook 16.0"
_PHONE = "Mail for Android"


def _c(name: str, email: str, offset: float, agent: str) -> _Customer:
    return _Customer(name, email, offset, agent)


_SIGN = "\n\nKind regards,\n{agent}\nCustomer Support, Demo Shop"

_CASES: tuple[_Case, ...] = (
    # --- answered on time -------------------------------------------------------------------------
    _Case(
        _c("Emma Clarke", "emma.clarke@example.com", 0, _APPLE),
        "Order #48213 hasn't arrived",
        "Hello,\n\nI ordered a standing desk (order #48213) two weeks ago and the tracking page hasn't "
        "changed since it left your warehouse. Could you check where it is?\n\nThanks,\nEmma",
        220,
        _Reply(
            timedelta(hours=2),
            None,
            "Hello Emma,\n\nsorry for the wait. The carrier had the parcel at their Leeds depot; it is "
            "back on the road and should reach you on Thursday.",
        ),
        _FollowUp(
            5,
            'Hi again,\n\nthe tracking page now says "delivered" but nothing is here, and my neighbours '
            "haven't got it either. What can we do?\n\nEmma",
        ),
    ),
    _Case(
        _c("Sofia Rossi", "s.rossi@rossi-design.example", 2, _OUTLOOK),
        "Invoice INV-2291 shows the wrong VAT number",
        "Good morning,\n\nthe invoice INV-2291 lists our old VAT number. Could you issue a corrected "
        "invoice with IT01234567890?\n\nBest regards,\nSofia Rossi\nRossi Design",
        197,
        _Reply(
            timedelta(hours=3),
            1,
            "Dear Ms Rossi,\n\nthank you for letting us know. The corrected invoice INV-2291-A is attached; "
            "the old one is cancelled.",
        ),
    ),
    _Case(
        _c("Noah Fischer", "noah@fischer-bau.example", 2, _THUNDERBIRD),
        "Can't log in after password reset",
        'Hi,\n\nI reset my password this morning but the login page still says "invalid credentials". '
        "I tried two browsers.\n\nNoah Fischer",
        188,
        _Reply(
            timedelta(minutes=42),
            0,
            "Hi Noah,\n\nthe reset link had expired before you used it. I have sent you a fresh one; it is "
            "valid for one hour.",
        ),
        _FollowUp(
            168,
            "Hi,\n\nstill locked out, the new link gives the same error. Could my account be "
            "blocked?\n\nNoah",
            _Reply(
                timedelta(hours=1),
                0,
                "Hi Noah,\n\nyour account was locked after five attempts. I have unlocked it; please "
                "try again.",
            ),
        ),
    ),
    _Case(
        _c("Oscar Lindqvist", "oscar.lindqvist@example.com", 1, _THUNDERBIRD),
        "Error 502 on the login page",
        'Hello,\n\nsince this morning your login page answers with "502 Bad Gateway". Is there an '
        "outage?\n\nOscar",
        214,
        _Reply(
            timedelta(minutes=30),
            1,
            "Hello Oscar,\n\nyes, we had a short outage of the login service; it is fixed since 10:40.",
        ),
    ),
    _Case(
        _c("Olivia Brown", "olivia.brown@example.net", -5, _APPLE),
        "Change delivery address for order #48390",
        "Hi there,\n\ncould you send order #48390 to my office instead: 12 Harbour Street, Suite 4? It has "
        "not shipped yet I think.\n\nThank you!\nOlivia",
        144,
        _Reply(
            timedelta(hours=1, minutes=12),
            None,
            "Hi Olivia,\n\ndone: order #48390 will go to 12 Harbour Street, Suite 4.",
        ),
    ),
    _Case(
        _c("Ava Dubois", "ava.dubois@example.org", 1, _PHONE),
        "Where is my refund?",
        "Bonjour,\n\nI returned the blue kettle three weeks ago (RMA 5498) and haven't seen the refund on "
        "my card yet.\n\nAva",
        150,
        _Reply(
            timedelta(hours=5),
            0,
            "Bonjour Ava,\n\nthe refund of EUR 39.90 was issued yesterday; banks take 3-5 working days to "
            "show it.",
        ),
    ),
    _Case(
        _c("Lucas Silva", "lucas.silva@example.com", -3, _OUTLOOK),
        "Subscription renewal failed",
        "Hello,\n\nI got an email that my annual subscription could not be renewed. My card is valid "
        "until 2029. Can you try again?\n\nLucas Silva",
        96,
        _Reply(
            timedelta(hours=2),
            None,
            "Hello Lucas,\n\nyour bank declined the first attempt; the second one went through this "
            "morning. Your subscription runs until next year.",
        ),
    ),
    _Case(
        _c("Ben Carter", "ben.carter@carter-logistics.example", 0, _OUTLOOK),
        "New invoice address from next month",
        "Dear support team,\n\nplease address our invoices from next month to Carter Logistics Ltd, "
        "Accounts Payable, 3 Dock Road.\n\nRegards,\nBen Carter",
        68,
        _Reply(
            timedelta(hours=3),
            1,
            "Dear Mr Carter,\n\nwe have updated the invoice address for your account from next month.",
        ),
    ),
    _Case(
        _c("Amelia Novak", "amelia@novak-consulting.example", 1, _THUNDERBIRD),
        "Request for a VAT invoice",
        "Hello,\n\nfor order #48544 I only received a receipt. Could I get a proper VAT invoice made out "
        "to Novak Consulting?\n\nAmelia Novak",
        72,
        _Reply(
            timedelta(hours=4),
            0,
            "Hello Amelia,\n\nthe VAT invoice for order #48544 is attached.",
        ),
    ),
    _Case(
        _c("Ethan Walker", "ethan.walker@example.org", -6, _PHONE),
        "Two-factor codes not arriving",
        "Hi,\n\nthe SMS codes for two-factor login never arrive on my phone. I have tried five times "
        "today.\n\nEthan",
        53,
        _Reply(
            timedelta(hours=1, minutes=30),
            None,
            "Hi Ethan,\n\nyour phone number had an extra zero. I corrected it; codes should arrive now.",
        ),
    ),
    _Case(
        _c("Mia Johansson", "mia.johansson@example.net", 1, _OUTLOOK),
        "Please cancel order #48702",
        "Hello,\n\nI ordered the wrong colour by mistake. Please cancel order #48702.\n\nMia Johansson",
        27,
        _Reply(
            timedelta(minutes=18),
            1,
            "Hello Mia,\n\norder #48702 is cancelled; you will not be charged.",
        ),
    ),
    _Case(
        _c("Zoe Anderson", "zoe.anderson@example.net", -8, _APPLE),
        "Gift card balance",
        "Hi,\n\nhow can I see how much is left on my gift card? The code starts with GC-7731.\n\nZoe",
        20,
        _Reply(
            timedelta(hours=1),
            None,
            "Hi Zoe,\n\nthe card GC-7731... has 23.50 left. You can also see it under Account > Gift cards.",
        ),
    ),
    _Case(
        _c("Grace Kim", "grace.kim@example.net", 9, _PHONE),
        "How do I update my account email?",
        "Hello,\n\nI changed jobs and want my account to use my private address from now on. How do I "
        "do that?\n\nGrace",
        115,
        _Reply(
            timedelta(hours=2, minutes=30),
            1,
            "Hello Grace,\n\nunder Account > Profile > Email you can change it; we send a confirmation "
            "link to the new address.",
        ),
    ),
    # --- answered late ------------------------------------------------------------------------------
    _Case(
        _c("Liam Patel", "liam.patel@example.org", 0, _THUNDERBIRD),
        "Refund for returned headphones (RMA 5521)",
        "Hello,\n\nI sent the headphones back with RMA 5521 and the parcel was delivered to you. When "
        "will I get my refund?\n\nLiam Patel",
        238,
        _Reply(
            timedelta(hours=196),
            0,
            "Hello Liam,\n\nI am very sorry that your message waited so long. The refund of GBP 129.00 was "
            "issued today.",
        ),
    ),
    _Case(
        _c("Chloe Martin", "chloe.martin@example.net", 1, _APPLE),
        "Damaged item in parcel, order #48155",
        "Hello,\n\nthe glass top of the side table (order #48155) arrived cracked. Photos attached. Can "
        "you send a replacement?\n\nChloe",
        232,
        _Reply(
            timedelta(hours=180),
            None,
            "Hello Chloe,\n\nplease excuse our late answer. A replacement top is on its way, no need to "
            "return the broken one.",
        ),
    ),
    # --- unanswered, past the deadline -----------------------------------------------------------
    _Case(
        _c("Mateo Garcia", "mgarcia@garcia-imports.example", 2, _OUTLOOK),
        "Quote for 200 units of the X2 desk lamp",
        "Dear team,\n\nwe would like a quote for 200 units of the X2 desk lamp, delivered to Valencia, "
        "with your volume discount.\n\nBest regards,\nMateo Garcia\nGarcia Imports",
        225,
        None,
        _FollowUp(
            120,
            "Dear team,\n\nany update on the quote? We need to place the order this month.\n\nMateo",
        ),
    ),
    _Case(
        _c("Hannah Müller", "hannah.mueller@example.com", 1, _THUNDERBIRD),
        "Charged twice for order #48277",
        "Hallo,\n\nmy credit card shows two charges of EUR 84.00 for order #48277. Please refund one of "
        "them.\n\nHannah Müller",
        200,
        None,
        flagged=True,
    ),
    _Case(
        _c("Yuki Tanaka", "yuki.tanaka@example.org", 9, _OUTLOOK),
        "Copy of invoice INV-2240 for our records",
        "Hello,\n\nour accounting department needs a copy of invoice INV-2240. Could you send it as "
        "PDF?\n\nThank you,\nYuki Tanaka",
        193,
        None,
    ),
    # --- unanswered, within the deadline ------------------------------------------------------------
    _Case(
        _c("Jack O'Brien", "jack.obrien@example.com", 0, _PHONE),
        "Discount code SPRING10 not accepted",
        "Hi,\n\nthe checkout says SPRING10 is invalid, but your newsletter says it's valid until the end "
        "of the month.\n\nJack",
        9,
        None,
    ),
    _Case(
        _c("Isabella Costa", "isabella.costa@example.org", -3, _APPLE),
        "Wrong size delivered - can I exchange?",
        "Hello,\n\nI ordered the jacket in M but received an L. Can I exchange it? What do I need to "
        "do?\n\nIsabella",
        3,
        None,
    ),
    _Case(
        _c("Leo Schmidt", "leo@schmidt-werkstatt.example", 1, _THUNDERBIRD),
        "When is invoice INV-2317 due?",
        "Guten Tag,\n\nthe invoice INV-2317 does not show a due date. By when do you need the "
        "payment?\n\nLeo Schmidt\nSchmidt Werkstatt",
        1.5,
        None,
    ),
    _Case(
        _c("Priya Sharma", "priya.sharma@example.org", 5.5, _OUTLOOK),
        "Invoice PDF won't open",
        "Hello,\n\nthe invoice PDF in my account shows an error in every PDF reader I tried. Could you "
        "email it to me instead?\n\nPriya",
        11,
        None,
    ),
)

_NEWSLETTER_BODY = (
    "This week at Office Supplies Weekly: 20% off ergonomic chairs, new recycled paper range, and our "
    "guide to a tidier desk.\n\nYou receive this because you subscribed at officesupplies.example.\n"
    "Unsubscribe: https://officesupplies.example/unsubscribe?u=demo\n"
)


class _Writer:
    """Writes messages as Maildir++ files with realistic names and mtimes."""

    def __init__(self, root: Path, rng: random.Random, host: str) -> None:
        self.root = root
        self.rng = rng
        self.host = host
        self.count = 0

    def write(self, folder: str, msg: Message, delivered: datetime, flags: str, *, unseen_new: bool) -> None:
        data = msg.as_bytes(policy=default_policy)
        self.count += 1
        epoch = int(delivered.timestamp())
        unique = f"{epoch}.M{self.rng.randrange(1_000_000):06d}P{self.rng.randrange(1000, 30000)}"
        base = f"{unique}Q{self.count}.{self.host},S={len(data)}"
        directory = self.root / folder
        path = directory / "new" / base if unseen_new else directory / "cur" / f"{base}:2,{flags}"
        path.write_bytes(data)
        os.utime(path, (delivered.timestamp(), delivered.timestamp()))


def _make_maildir(folder: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)


def write_demo_maildir(
    root: Path,
    *,
    now: datetime,
    team_address: str = "support@demo.example",
    members: Sequence[DemoMember] = DEFAULT_MEMBERS,
    seed: int = 7,
) -> DemoSummary:
    """Write a team mailbox as Maildir++ under ``root`` (INBOX at the root, replies in ``.Sent``).

    Deterministic for a given ``now`` and ``seed``; every date lies before ``now``. ``root`` must not
    exist yet or be empty.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"demo maildir '{root}' is not empty")
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    team_domain = team_address.rsplit("@", 1)[1].lower()
    _make_maildir(root)
    _make_maildir(root / ".Sent")
    (root / ".Sent" / "maildirfolder").touch()
    (root / "subscriptions").write_text("Sent\n")
    writer = _Writer(root, rng, f"mail.{team_domain}")

    def msgid(domain: str, when: datetime) -> str:
        return f"{when:%Y%m%d%H%M%S}.{rng.getrandbits(48):012x}@{domain}"

    def jitter(hours: float) -> datetime:
        # A few minutes either way so the mail looks typed by people; far from every threshold.
        return now - timedelta(hours=hours) + timedelta(seconds=rng.randrange(-600, 600))

    def responder(index: int | None) -> tuple[str, str]:
        if index is None or not members:
            return "Demo Shop Support", team_address
        member = members[index % len(members)]
        return member.name, member.email

    statuses: dict[str, str] = {}
    responded_by: dict[str, str] = {}
    reasons: dict[str, str] = {}
    counts = {"customer": 0, "automated": 0, "internal": 0, "nudges": 0, "outbound": 0}
    inbox_flags: list[str] = []

    def inbound(
        case: _Case,
        subject: str,
        body: str,
        sent: datetime,
        parent: EmailMessage | None,
        flags: str,
        unseen_new: bool,
    ) -> EmailMessage:
        customer = case.customer
        msg = EmailMessage()
        delivered = sent + timedelta(seconds=rng.randrange(4, 90))
        msg["Return-Path"] = f"<{customer.email}>"
        msg["Delivered-To"] = team_address
        msg["Received"] = (
            f"from mail.{customer.domain} (mail.{customer.domain} [192.0.2.{rng.randrange(2, 250)}]) "
            f"by mx.{team_domain} with ESMTPS id {rng.getrandbits(40):010X} for <{team_address}>; "
            f"{format_datetime(delivered)}"
        )
        msg["From"] = formataddr((customer.name, customer.email))
        msg["To"] = formataddr(("Demo Shop Support", team_address))
        msg["Subject"] = subject
        msg["Date"] = format_datetime(sent.astimezone(customer.tz))
        msg["Message-ID"] = f"<{msgid(customer.domain, sent)}>"
        if parent is not None:
            _thread(msg, parent)
        msg["MIME-Version"] = "1.0"
        msg["User-Agent" if "Thunderbird" in customer.user_agent else "X-Mailer"] = customer.user_agent
        msg.set_content(body)
        writer.write("", msg, delivered, flags, unseen_new=unseen_new)
        inbox_flags.append("" if unseen_new else flags)
        counts["customer"] += 1
        return msg

    def reply(case: _Case, parent: EmailMessage, spec: _Reply, received: datetime) -> EmailMessage:
        name, address = responder(spec.by)
        sent = received + spec.after + timedelta(seconds=rng.randrange(0, 300))
        msg = EmailMessage()
        msg["From"] = formataddr((name, address))
        msg["To"] = formataddr((case.customer.name, case.customer.email))
        if address != team_address:
            msg["Reply-To"] = team_address
        msg["Subject"] = _re(str(parent["Subject"]))
        msg["Date"] = format_datetime(sent)
        msg["Message-ID"] = f"<{msgid(team_domain, sent)}>"
        _thread(msg, parent)
        msg["MIME-Version"] = "1.0"
        signature = _SIGN.format(agent=name if address != team_address else "The support team")
        quoted = "\n".join("> " + line if line else ">" for line in _body(parent).splitlines())
        when = format_datetime(_date(parent))
        msg.set_content(f"{spec.body}{signature}\n\nOn {when}, {case.customer.name} wrote:\n{quoted}\n")
        writer.write(".Sent", msg, sent, "S", unseen_new=False)
        responded_by[_id(parent)] = address
        return msg

    def status_of(received: datetime, spec: _Reply | None) -> str:
        if spec is None:
            age = now - received
            if age < WAITING_MAX:
                return "waiting"
            assert age > BREACHED_MIN, "demo case in the ambiguous range"
            return "breached"
        if spec.after < timedelta(hours=24):
            return "answered_on_time"
        assert spec.after > BREACHED_MIN, "demo reply in the ambiguous range"
        return "answered_late"

    sent_messages = 0
    auto_reply_to: EmailMessage | None = None
    for case in _CASES:
        received = jitter(case.hours_ago)
        answered = case.reply is not None
        unseen = not answered and case.hours_ago < 4
        flags = ("F" if case.flagged else "") + ("RS" if answered else "S")
        original = inbound(case, case.subject, case.body, received, None, flags, unseen)
        statuses[_id(original)] = status_of(received, case.reply)
        last: EmailMessage = original
        if case.reply is not None:
            last = reply(case, original, case.reply, received)
            sent_messages += 1
            if case.customer.email.startswith("mia."):
                auto_reply_to = last
        if case.follow_up is not None:
            follow = case.follow_up
            follow_sent = jitter(follow.hours_ago)
            follow_answered = follow.reply is not None
            follow_flags = "RS" if follow_answered else "S"
            unseen_follow = not follow_answered and follow.hours_ago < 12
            subject = _re(case.subject)
            nudge = inbound(case, subject, follow.body, follow_sent, last, follow_flags, unseen_follow)
            if case.reply is None:
                reasons[_id(nudge)] = "follow_up_while_open"
                counts["nudges"] += 1
            else:
                statuses[_id(nudge)] = status_of(follow_sent, follow.reply)
                if follow.reply is not None:
                    reply(case, nudge, follow.reply, follow_sent)
                    sent_messages += 1

    for sent in _outbound_and_noise(
        writer, rng, now, team_address, team_domain, members, auto_reply_to, reasons, inbox_flags
    ):
        counts[sent] += 1
        if sent == "outbound":
            sent_messages += 1

    return DemoSummary(
        root=root,
        now=now,
        team_address=team_address,
        inbox_messages=len(inbox_flags),
        sent_messages=sent_messages,
        inbox_unseen=sum(1 for f in inbox_flags if "S" not in f),
        inbox_unanswered=sum(1 for f in inbox_flags if "R" not in f),
        customer_messages=counts["customer"],
        answered_on_time=sum(1 for s in statuses.values() if s == "answered_on_time"),
        answered_late=sum(1 for s in statuses.values() if s == "answered_late"),
        waiting=sum(1 for s in statuses.values() if s == "waiting"),
        breached=sum(1 for s in statuses.values() if s == "breached"),
        automated=counts["automated"],
        internal=counts["internal"],
        follow_ups_while_open=counts["nudges"],
        statuses=statuses,
        responded_by=responded_by,
        reasons=reasons,
    )


def _outbound_and_noise(
    writer: _Writer,
    rng: random.Random,
    now: datetime,
    team_address: str,
    team_domain: str,
    members: Sequence[DemoMember],
    auto_reply_to: EmailMessage | None,
    reasons: dict[str, str],
    inbox_flags: list[str],
) -> list[str]:
    """Write the mail that opens no awaiting item; return a kind per message written."""
    kinds: list[str] = []
    sender = members[-1] if members else DemoMember("Demo Shop Support", team_address)
    colleague = members[0] if members else sender

    def new_id(domain: str, when: datetime) -> str:
        return f"{when:%Y%m%d%H%M%S}.{rng.getrandbits(48):012x}@{domain}"

    # An out-of-office answer from a customer's mail server to our reply (RFC 3834 auto-replied).
    if auto_reply_to is not None:
        when = _date(auto_reply_to) + timedelta(seconds=rng.randrange(20, 90))
        to_addr = str(auto_reply_to["To"])
        ooo = EmailMessage()
        ooo["Return-Path"] = "<mia.johansson@example.net>"
        ooo["From"] = to_addr
        ooo["To"] = str(auto_reply_to["From"])
        ooo["Subject"] = f"Automatic reply: {auto_reply_to['Subject']}"
        ooo["Date"] = format_datetime(when)
        ooo["Message-ID"] = f"<{new_id('example.net', when)}>"
        _thread(ooo, auto_reply_to)
        ooo["Auto-Submitted"] = "auto-replied"
        ooo["X-Auto-Response-Suppress"] = "All"
        ooo["MIME-Version"] = "1.0"
        ooo.set_content(
            "Thank you for your message. I am out of the office until Monday with limited access to "
            "email. For urgent matters please call our office.\n\nMia Johansson"
        )
        writer.write("", ooo, when, "S", unseen_new=False)
        inbox_flags.append("S")
        reasons[_id(ooo)] = "automated:out_of_office"
        kinds.append("automated")

    # A newsletter the team subscribed to (RFC 2369 List-Unsubscribe, RFC 8058 one-click).
    when = now - timedelta(hours=50, minutes=rng.randrange(0, 30))
    news = EmailMessage()
    news["Return-Path"] = "<bounce-7731@mailer.officesupplies.example>"
    news["From"] = formataddr(("Office Supplies Weekly", "news@officesupplies.example"))
    news["To"] = team_address
    news["Subject"] = "This week: 20% off ergonomic chairs"
    news["Date"] = format_datetime(when)
    news["Message-ID"] = f"<{new_id('mailer.officesupplies.example', when)}>"
    news["List-Id"] = "Office Supplies Weekly <weekly.officesupplies.example>"
    news["List-Unsubscribe"] = (
        "<https://officesupplies.example/unsubscribe?u=demo>, <mailto:unsubscribe@officesupplies.example>"
    )
    news["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    news["Precedence"] = "bulk"
    news["MIME-Version"] = "1.0"
    news.set_content(_NEWSLETTER_BODY)
    news.add_alternative(f"<html><body><p>{_NEWSLETTER_BODY}</p></body></html>", subtype="html")
    news.set_boundary(f"=_weekly_{rng.getrandbits(64):016x}")  # fixed: the generator's is random
    writer.write("", news, when, "", unseen_new=False)
    inbox_flags.append("")
    reasons[_id(news)] = "automated:bulk"
    kinds.append("automated")

    # An outbound notice to a customer's old address, and the bounce it earns (RFC 3464 report).
    when = now - timedelta(hours=30, minutes=rng.randrange(0, 30))
    notice = EmailMessage()
    notice["From"] = formataddr((sender.name, sender.email))
    notice["To"] = formataddr(("Markus Keller", "m.keller@oldmail.example"))
    notice["Reply-To"] = team_address
    notice["Subject"] = "Your warranty registration"
    notice["Date"] = format_datetime(when)
    notice["Message-ID"] = f"<{new_id(team_domain, when)}>"
    notice["MIME-Version"] = "1.0"
    notice.set_content(
        "Dear Mr Keller,\n\nyour warranty for the X2 desk lamp is registered until next year.\n\n"
        f"Kind regards,\n{sender.name}\nCustomer Support, Demo Shop"
    )
    writer.write(".Sent", notice, when, "S", unseen_new=False)
    reasons[_id(notice)] = "outbound"
    kinds.append("outbound")

    bounced = when + timedelta(seconds=rng.randrange(5, 60))
    bounce = _bounce(notice, bounced, team_domain, new_id)
    bounce.set_boundary(f"{rng.getrandbits(40):010X}.{int(bounced.timestamp())}/mx.{team_domain}")
    writer.write("", bounce, bounced, "S", unseen_new=False)
    inbox_flags.append("S")
    reasons[_id(bounce)] = "automated:bounce"
    kinds.append("automated")

    # Colleagues talking to each other through the team address.
    when = now - timedelta(hours=45, minutes=rng.randrange(0, 30))
    memo = EmailMessage()
    memo["From"] = formataddr((colleague.name, colleague.email))
    memo["To"] = team_address
    if sender.email != colleague.email:
        memo["Cc"] = formataddr((sender.name, sender.email))
    memo["Subject"] = "Rota for next week"
    memo["Date"] = format_datetime(when)
    memo["Message-ID"] = f"<{new_id(team_domain, when)}>"
    memo["MIME-Version"] = "1.0"
    memo.set_content(
        "Hi all,\n\nnext week I cover the inbox Monday to Wednesday, Bob takes Thursday and Friday. The "
        f"refund backlog has priority.\n\n{colleague.name.split()[0]}"
    )
    writer.write("", memo, when, "S", unseen_new=False)
    inbox_flags.append("S")
    reasons[_id(memo)] = "internal"
    kinds.append("internal")
    return kinds


def _bounce(
    original: EmailMessage, when: datetime, team_domain: str, new_id: Callable[[str, datetime], str]
) -> EmailMessage:
    """A Postfix-style non-delivery report (RFC 3464 multipart/report) for ``original``."""
    mta = f"mx.{team_domain}"
    recipient = getaddresses([str(original["To"])])[0][1]
    report = EmailMessage()
    report["Return-Path"] = "<>"
    report["From"] = formataddr(("Mail Delivery System", f"MAILER-DAEMON@{mta}"))
    report["To"] = str(original["From"])
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(when)
    report["Message-ID"] = f"<{new_id(mta, when)}>"
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    report.set_content(
        f"This is the mail system at host {mta}.\n\n"
        "I'm sorry to have to inform you that your message could not be delivered to one or more "
        "recipients.\n\n"
        f"<{recipient}>: host mx.oldmail.example[198.51.100.25] said: 550 5.1.1 <{recipient}>: "
        "Recipient address rejected: User unknown in virtual mailbox table\n"
    )
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")

    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {mta}"
    per_message["Arrival-Date"] = format_datetime(_date(original))
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Remote-MTA"] = "dns; mx.oldmail.example"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 Recipient address rejected: User unknown"
    status = EmailMessage()
    status["Content-Type"] = "message/delivery-status"
    status["Content-Description"] = "Delivery report"
    status.set_payload([per_message, per_recipient])
    report.attach(status)

    headers = EmailMessage()
    headers["Content-Type"] = "text/rfc822-headers"
    headers["Content-Description"] = "Undelivered Message Headers"
    header_text = "".join(f"{name}: {value}\n" for name, value in original.items())
    headers.set_payload(header_text)
    report.attach(headers)
    return report


def _thread(msg: Message, parent: Message) -> None:
    """Set In-Reply-To and References as RFC 5322 §3.6.4 asks of a reply to ``parent``."""
    parent_id = str(parent["Message-ID"])
    refs = str(parent.get("References", "")).split()
    msg["In-Reply-To"] = parent_id
    msg["References"] = " ".join([*refs, parent_id])


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _id(msg: Message) -> str:
    return str(msg["Message-ID"]).strip().strip("<>")


def _date(msg: Message) -> datetime:
    value = msg["Date"]
    parsed = value.datetime if hasattr(value, "datetime") else None
    assert isinstance(parsed, datetime)
    return parsed


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    return str(part.get_content()).rstrip("\n") if part is not None else ""
