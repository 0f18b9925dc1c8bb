"""Links in messages, below the runs that write them and the feedback loop that reads them
back: signed tokens (one salt per purpose), short codes for paper, and the tracked links,
open pixel and QR codes a message carries."""
from ccm.links.tokens import ShortCodes, Signer, TokenError
from ccm.links.tracked import MessageLinks, Tracker, qr_data_uri

__all__ = ["MessageLinks", "ShortCodes", "Signer", "TokenError", "Tracker", "qr_data_uri"]
