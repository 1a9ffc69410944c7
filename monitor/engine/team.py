"""A team as the engine sees it: who is team, colleague or customer, and the options its rules asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.events import MessageEvent, folder_role
from monitor.mail.classify import matches_sender_pattern
from monitor.mail.preview import matches_phrase


@dataclass(frozen=True, slots=True)
class TeamContext:
    """What the engine must know about a team to tell customers from colleagues."""

    name: str
    addresses: frozenset[str] = frozenset()
    members: Mapping[str, str] = field(default_factory=dict)
    """Member address -> member name."""
    internal_domains: frozenset[str] = frozenset()
    no_reply_senders: tuple[str, ...] = ()
    """The team's own patterns of automated senders, on top of the classifier's defaults."""
    holding_phrases: tuple[str, ...] = ()
    """Phrases that make a team message an acknowledgment (a holding reply), not a full answer."""
    closing_thanks: bool = False
    """A customer's short "thanks!" after an answer opens no new item (needs the message's text)."""
    internal_forward_is_response: bool = False
    """A team member's forward of the conversation to a colleague counts as the team's response."""

    def is_holding(self, message: MessageEvent) -> bool:
        """Whether a team message is an acknowledgment rather than an answer."""
        if message.holding_marker:
            return True
        return bool(self.holding_phrases) and matches_phrase(
            f"{message.subject} {message.preview}", self.holding_phrases
        )

    def automated(self, message: MessageEvent) -> str | None:
        """Why ``message`` is automated (the source's verdict, else the team's no-reply patterns, else bulk
        precedence on mail not addressed to the team personally)."""
        if message.automated:
            return message.automated
        if (
            self.no_reply_senders
            and message.from_addr
            and matches_sender_pattern(message.from_addr, self.no_reply_senders)
        ):
            return "no_reply_sender"
        # Issue 8: Precedence bulk/junk/list reached the team through a list or Bcc, not written to it. On
        # mail To or Cc the team's or a member's own address it stays a hint: list software (a Google
        # Group behind the team's address) adds it to what customers write.
        # The team's own mail is never judged so: helpdesk tools (RT, OTRS) put Precedence: bulk on the
        # replies they send to customers, to keep auto-responders quiet; those replies are answers.
        if (
            message.bulk_precedence
            and folder_role(message.folder) != "sent"
            and self.responder(message) is None
            and not self.addressed_personally(message)
        ):
            return "bulk"
        return None

    def addressed_personally(self, message: MessageEvent) -> bool:
        """Whether ``message`` names a team address or a member's own address in To or Cc."""
        return any(a in self.addresses or a in self.members for a in (*message.to_addrs, *message.cc_addrs))

    def role(self, address: str | None) -> str:
        """``team``, ``internal`` or ``customer`` for one address (``unknown`` when missing)."""
        if not address:
            return "unknown"
        if address in self.addresses or address in self.members:
            return "team"
        domain = address.rpartition("@")[2]
        for internal in self.internal_domains:
            if domain == internal or domain.endswith("." + internal):
                return "internal"
        return "customer"

    def responder(self, message: MessageEvent) -> str | None:
        """The member (or team address) that sent ``message``; Sender wins for "on behalf of" mail."""
        for address in (message.sender_addr, message.from_addr):
            if address and address in self.members:
                return self.members[address]
        if message.from_addr in self.addresses:
            return message.from_addr
        return None

    def member_reached(self, message: MessageEvent) -> str | None:
        """The member whose own address a customer's message was sent to (To before Cc), if any."""
        for address in (*message.to_addrs, *message.cc_addrs):
            if address in self.members:
                return self.members[address]
        return None
