"""scengrid: scenario grid library shared by every service."""
