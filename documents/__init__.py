"""Pure rendering: sandboxed templates, PDF, e-mail and SMS.

Knows nothing of ``ccm`` or ``channels``: it takes plain data and returns
strings, bytes and messages.
"""

from .bidi import RIGHT_TO_LEFT_LANGUAGES, locale_supported
from .email import Attachment, compose_email, inline_css, make_message_id
from .errors import OutputTooLarge, RenderError, RenderTimeout, TemplateProblem, TemplateSyntaxProblem
from .i18n import load_po, negotiate, parse_po
from .pdf import (PdfDocument, PdfRenderer, StaticPages, WeasyPrintRenderer,
                  harfbuzz_subset_available, pdf_fonts)
from .sandbox import TemplateEnvironment, file_loader, parse_template, refused_constants
from .sms import SmsInfo, sms_info

__all__ = [
    "Attachment",
    "OutputTooLarge",
    "RIGHT_TO_LEFT_LANGUAGES",
    "PdfDocument",
    "PdfRenderer",
    "RenderError",
    "RenderTimeout",
    "SmsInfo",
    "StaticPages",
    "TemplateEnvironment",
    "TemplateProblem",
    "TemplateSyntaxProblem",
    "WeasyPrintRenderer",
    "compose_email",
    "file_loader",
    "harfbuzz_subset_available",
    "inline_css",
    "load_po",
    "locale_supported",
    "make_message_id",
    "negotiate",
    "parse_po",
    "parse_template",
    "refused_constants",
    "pdf_fonts",
    "sms_info",
]
