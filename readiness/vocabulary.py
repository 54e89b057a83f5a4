"""The words of the readiness domain: codes, their labels, and small pure helpers.

Every app takes its choices, labels and glyphs from here (models build their
``TextChoices`` from these pairs), so a code or a label is spelled once.
Codes follow shared/INVENTORY.md; labels are what the pages show.
"""

from __future__ import annotations

from types import MappingProxyType

# --- Rule outcomes and readiness levels ------------------------------------

PASS = "pass"
PARTIAL = "partial"
FAIL = "fail"
NA = "na"
# A heatmap cell whose fail or partial the lead has accepted as a risk.
ACCEPTED = "accepted"

STATUS_LABELS = MappingProxyType({PASS: "Pass", PARTIAL: "Partial", FAIL: "Fail", NA: "Not applicable", ACCEPTED: "Accepted"})
# The same in a word, where space is short (heatmap cells, CSV).
STATUS_WORDS = MappingProxyType({PASS: "pass", PARTIAL: "partial", FAIL: "fail", NA: "n/a", ACCEPTED: "accepted"})
# Status is never told by colour alone: every tag carries one of these glyphs.
STATUS_GLYPHS = MappingProxyType({PASS: "✓", PARTIAL: "◐", FAIL: "✕", NA: "–", ACCEPTED: "≈"})
# Worst first, so that an ascending sort puts problems on top.
STATUS_ORDER = MappingProxyType({FAIL: 0, PARTIAL: 1, ACCEPTED: 2, PASS: 3, NA: 4})

READY = "ready"
AT_RISK = "at_risk"
NOT_READY = "not_ready"
LEVEL_LABELS = MappingProxyType({READY: "Ready", AT_RISK: "At risk", NOT_READY: "Not ready"})
LEVEL_ORDER = MappingProxyType({NOT_READY: 0, AT_RISK: 1, READY: 2})
# The rule status whose colour and glyph a level borrows.
LEVEL_STATUS = MappingProxyType({READY: PASS, AT_RISK: PARTIAL, NOT_READY: FAIL})


def level_status(level: str | None) -> str:
    """The status a level borrows its colour and glyph from; ``na`` when unscored."""
    return LEVEL_STATUS.get(level or "", NA)

# --- Findings ---------------------------------------------------------------

CRITICAL = "critical"
WARNING = "warning"
SEVERITY_LABELS = MappingProxyType({CRITICAL: "Critical", WARNING: "Warning"})
SEVERITY_GLYPHS = MappingProxyType({CRITICAL: "✕", WARNING: "!"})

# The sections of the inventory format, in its order; findings sort by it.
SECTIONS: tuple[str, ...] = (
    "profile",
    "devices",
    "recovery_methods",
    "api_keys",
    "automations",
    "subscriptions",
    "drills",
    "permissions",
)
SECTION_TITLES = MappingProxyType(
    {
        "profile": "Profile",
        "devices": "Trusted devices",
        "recovery_methods": "Recovery methods",
        "api_keys": "API keys",
        "automations": "Automations",
        "subscriptions": "Market data",
        "drills": "Drills",
        "permissions": "Trading permissions",
        "accepted_risks": "Accepted risks",
    }
)

# --- Inventory codes ----------------------------------------------------------

ACTIVE = "active"

DEVICE_KINDS = MappingProxyType({"desktop": "Desktop", "laptop": "Laptop", "mobile": "Mobile phone", "tablet": "Tablet"})
# How a kind reads inside a sentence ("add a phone as a second").
DEVICE_KIND_WORDS = MappingProxyType({"desktop": "desktop", "laptop": "laptop", "mobile": "phone", "tablet": "tablet"})
COMPUTER_KINDS = frozenset({"desktop", "laptop"})
DEVICE_STATUSES = MappingProxyType({"active": "Active", "lost": "Lost", "revoked": "Revoked"})

RECOVERY_KINDS = MappingProxyType(
    {
        "phone": "Phone",
        "email": "Email",
        "authenticator": "Authenticator app",
        "backup_codes": "Backup codes",
        "hardware_key": "Hardware key",
        "secondary_device": "Secondary device",
    }
)
RECOVERY_KIND_TITLES = MappingProxyType(
    {
        "phone": "Recovery phone",
        "email": "Recovery e-mail",
        "authenticator": "Authenticator app",
        "backup_codes": "Backup codes",
        "hardware_key": "Hardware key",
        "secondary_device": "Secondary device",
    }
)
BACKUP_FACTORS = frozenset({"authenticator", "backup_codes", "hardware_key", "secondary_device"})

KEY_SCOPES = MappingProxyType({"read": "Read", "trade": "Trade", "transfer": "Transfer", "withdraw": "Withdraw"})
MONEY_SCOPES = frozenset({"transfer", "withdraw"})
KEY_STATUSES = MappingProxyType({"active": "Active", "revoked": "Revoked"})

AUTH_FAILURE_ACTIONS = MappingProxyType({"flatten": "Flatten positions", "close": "Close positions", "halt": "Halt only", "none": "Nothing"})
SAFE_AUTH_FAILURE = frozenset({"flatten", "close"})
AUTOMATION_STATUSES = MappingProxyType({"active": "Active", "paused": "Paused"})

ACCESS_POINTS = MappingProxyType(
    {
        "tws": "Trader Workstation",
        "desktop": "IBKR Desktop",
        "client_portal": "Client Portal",
        "mobile": "IBKR Mobile",
        "api": "Programmatic API",
    }
)

TASKS = MappingProxyType(
    {
        "complex_orders": "complex orders and spreads",
        "transfers_statements": "cash transfers and statements",
        "alerts_light_execution": "alerts and light execution",
    }
)
SUITABLE_ACCESS_POINTS = MappingProxyType(
    {
        "complex_orders": frozenset({"tws", "desktop"}),
        "transfers_statements": frozenset({"client_portal"}),
        "alerts_light_execution": frozenset({"mobile"}),
    }
)

BROKER_MFA = MappingProxyType(
    {
        "hardware_key": "Hardware security key",
        "ib_key": "IB Key (mobile authenticator)",
        "mobile_push": "Approval in the broker's mobile app",
        "authenticator_app": "Authenticator app",
        "sms": "SMS code",
        "email": "E-mail code",
        "none": "None",
    }
)
# How a second factor reads inside a sentence ("your login uses IB Key").
BROKER_MFA_WORDS = MappingProxyType(
    {
        "hardware_key": "a hardware key",
        "ib_key": "IB Key",
        "mobile_push": "approval in the broker's mobile app",
        "authenticator_app": "an authenticator app",
        "sms": "SMS codes",
        "email": "e-mail codes",
    }
)
STRONG_MFA = frozenset({"hardware_key", "ib_key", "mobile_push", "authenticator_app"})

# Live evidence: a bot's heartbeat (CHECKLIST.md catalog v2, *heartbeat*).
HEARTBEAT_STATUSES = MappingProxyType({"new": "New", "up": "Up", "late": "Late", "down": "Down", "failing": "Failing", "idle": "Idle (market closed)"})
# The status a heartbeat's tag borrows its colour and glyph from.
HEARTBEAT_TAGS = MappingProxyType({"new": NA, "up": PASS, "late": PARTIAL, "down": FAIL, "failing": FAIL, "idle": NA})
# What a ping says (INVENTORY.md "Ping protocol v2"); a start and a log never change the status.
SIGNAL_KINDS = MappingProxyType({"success": "Check-in", "failure": "Failure", "start": "Run started", "log": "Log"})

# The third gate: what the account may trade (CHECKLIST.md "Brokers (v2)").
PRODUCTS = MappingProxyType(
    {
        "stocks": "Stocks",
        "options": "Options",
        "futures": "Futures",
        "forex": "Forex",
        "bonds": "Bonds",
        "funds": "Funds",
        "crypto": "Crypto",
        "cfds": "CFDs",
    }
)
PERMISSION_STATUSES = MappingProxyType({"granted": "Granted", "pending": "Pending", "not_requested": "Not requested"})
# Brokers apply a permission change after about two days (IBKR); longer is worth a call.
PERMISSION_PENDING_DAYS = 2

REGIONS = MappingProxyType(
    {
        "US": "United States",
        "CA": "Canada",
        "EU": "European Union",
        "UK": "United Kingdom",
        "CH": "Switzerland",
        "HK": "Hong Kong",
        "JP": "Japan",
        "AU": "Australia",
        "SG": "Singapore",
        "IN": "India",
        "OTHER": "Other",
    }
)

DUE_KINDS = MappingProxyType(
    {
        "key_expiry": "API key expiry",
        "key_rotation": "API key rotation",
        "recovery_verify": "recovery check",
        "device_validate": "device validation",
        "drill": "device-loss drill",
        "permission_pending": "pending permission",
    }
)


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in integers (no float error).

    The score and the desk's average both round this way.
    """
    return (2 * numerator + denominator) // (2 * denominator)


def join_words(words, conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c`` (or ``a or b`` for alternatives)."""
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def with_article(word: str) -> str:
    """``a US feed``, ``an EU feed``: by how the code is spoken, letter by letter."""
    return ("an " if word[:1].upper() in "AEFHILMNORSX" else "a ") + word


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 device``, ``2 devices``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
