"""The app's screens; each module holds one screen (or one family of small dialogs)."""
