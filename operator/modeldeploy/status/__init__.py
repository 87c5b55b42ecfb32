"""Status: from one pass's observations to the status written, conditions declared once."""
