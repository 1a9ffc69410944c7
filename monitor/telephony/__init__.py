"""Phone-system call logs, pure: CDR row layouts, number normalisation, legs grouped into calls."""
