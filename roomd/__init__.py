"""roomd: two-way sync between a room-booking system and Microsoft 365 room mailboxes."""

__version__ = "0.1.0"
