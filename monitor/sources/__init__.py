"""Source plugins: one module per kind, registered by entry points in the ``replywatch.sources`` group."""
