"""pygls language server: commands, status notifications, progress."""
