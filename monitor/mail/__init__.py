"""Mail as replywatch reads it: header decoding, automated-mail verdicts, text previews and events (pure)."""
