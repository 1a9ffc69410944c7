"""Team reports: a month's or a week's figures from the verdict core, as HTML mail, Markdown or JSON."""
