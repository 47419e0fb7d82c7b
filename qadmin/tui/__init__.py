"""The terminal console (`qadmin tui`): a Textual app over the operations layer only."""
