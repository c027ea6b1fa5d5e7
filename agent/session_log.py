"""
The customer's record of a session, shown at the end and saved on request
as a readable text file and a JSON file: who, when, what was granted and
when, files moved (name, size, SHA-256), and the chat.
"""

import json
import time

import attrs


@attrs.frozen
class FileMoved:
    """A file that went either way."""

    direction: str  # "to you" or "from you"
    name: str
    size: int
    sha256: str
    outcome: str


@attrs.frozen
class SessionLog:
    """Everything the summary shows."""

    operator: str
    organisation: str
    started_at: float
    ended_at: float
    reason: str
    grants: tuple  # of (at, scope, what)
    files: tuple[FileMoved, ...]
    chat: tuple  # of (sent_at, author, text)

    @classmethod
    def of(cls, session, operator: str, organisation: str, started_at: float, ended_at: float, transfers) -> "SessionLog":
        """The log of an ended L{agent.session.AgentSession}."""
        return cls(
            operator=operator,
            organisation=organisation,
            started_at=started_at,
            ended_at=ended_at,
            reason=session.end_reason or "",
            grants=tuple((g.at, g.scope, g.what) for g in session.grants.history),
            files=tuple(
                FileMoved("to you" if t.direction == "in" else "from you", t.name, t.size, t.sha256, t.outcome)
                for t in transfers
            ),
            chat=tuple((m.sent_at, "You" if m.author == "customer" else operator, m.text) for m in session.chat),
        )

    def duration(self) -> str:
        """How long the session lasted, e.g. C{12 min 5 s}."""
        seconds = max(0, round(self.ended_at - self.started_at))
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

    def to_text(self) -> str:
        """The readable text file."""
        clock = lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))  # noqa: E731
        lines = [
            "Ponte remote support session",
            f"Operator: {self.operator} ({self.organisation})",
            f"Started: {clock(self.started_at)}",
            f"Ended: {clock(self.ended_at)} ({self.duration()}): {self.reason}",
            "",
            "Permissions:",
            *[f"  {clock(at)}  {scope} {what}" for at, scope, what in self.grants],
            *([] if self.grants else ["  none"]),
            "",
            "Files:",
            *[f"  {f.direction}: {f.name}, {f.size} bytes, SHA-256 {f.sha256} ({f.outcome})" for f in self.files],
            *([] if self.files else ["  none"]),
            "",
            "Chat:",
            *[f"  {clock(at)}  {author}: {text}" for at, author, text in self.chat],
            *([] if self.chat else ["  none"]),
        ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """The JSON file."""
        return json.dumps(
            {
                "operator": self.operator,
                "organisation": self.organisation,
                "started_at": self.started_at,
                "ended_at": self.ended_at,
                "reason": self.reason,
                "grants": [{"at": at, "scope": scope, "what": what} for at, scope, what in self.grants],
                "files": [attrs.asdict(f) for f in self.files],
                "chat": [{"sent_at": at, "author": author, "text": text} for at, author, text in self.chat],
            },
            indent=2,
            ensure_ascii=False,
        )

    def save(self, text_path: str) -> tuple[str, str]:
        """Write the text file at C{text_path} and the JSON file beside it; returns both paths."""
        base = text_path[:-4] if text_path.endswith(".txt") else text_path
        json_path = base + ".json"
        with open(base + ".txt" if not text_path.endswith(".txt") else text_path, "w", encoding="utf-8") as f:
            f.write(self.to_text())
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        return (text_path if text_path.endswith(".txt") else base + ".txt"), json_path
