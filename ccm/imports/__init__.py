"""Import customers and the billing feed from CSV or JSONL files.

Every row is validated (``ccm.field_values``). A bad row goes to a rejects file with its
physical line number, the field, the reason and the raw text, and the rest of the file
goes on. Good rows are upserted in chunks (one transaction per chunk): by ``external_id``
for customers, by ``(account, period)`` for statements. Each stored row keeps a hash of
its normalised content, so importing the same data again writes nothing.

A file that cannot be read at all (missing, not UTF-8, unknown extension, missing header
columns) raises ImportFileError with one line naming the file; nothing is imported.

File formats (column names are case-insensitive; a UTF-8 BOM is fine; ``.gz`` is read):

Customers, CSV with a header row, or JSONL (one object per line, same keys):
  external_id (required), name (required), email, phone, address_line1, address_line2,
  city, region, postal_code, country, locale (default en_US), timezone (default UTC),
  preferred_channel, paperless, consent_email, consent_sms, consent_print, consent_at,
  consent_source; CSV: ``attr_<name>`` columns become attributes (as text);
  JSONL: an ``attributes`` object (text, numbers, true/false, null).

Billing feed, JSONL: one statement per line:
  {"account", "customer_id", "period", "opening_balance", "closing_balance",
   "amount_due", "due_date", "currency", "lines": [{"date", "description", "amount"}]}
Billing feed, CSV: one row per statement line, the statement columns repeated:
  account, customer_id, period, opening_balance, closing_balance, amount_due, due_date,
  currency, line_date, line_description, line_amount
  (a row whose three line_ columns are all empty adds no line: a statement without lines).
"""
from ccm.imports.customers import CUSTOMER_COLUMNS, CustomerRejected, household_key, import_customers, upsert_customer
from ccm.imports.feed import FEED_CSV_COLUMNS, FEED_JSON_KEYS, checked_statement, import_feed
from ccm.imports.files import ImportFileError, ImportReport
from ccm.imports.uploads import Reject, Upload, import_upload, imported_periods, load_upload, read_rejects, rejects_file, upload_periods

__all__ = [
    "ImportFileError",
    "ImportReport",
    "import_customers",
    "CustomerRejected",
    "upsert_customer",
    "import_feed",
    "checked_statement",
    "CUSTOMER_COLUMNS",
    "FEED_CSV_COLUMNS",
    "FEED_JSON_KEYS",
    "household_key",
    "Reject", "Upload", "import_upload", "imported_periods", "load_upload", "read_rejects", "rejects_file", "upload_periods",
]
