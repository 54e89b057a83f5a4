"""Re-entry steps after a device loss, built from one trader's own inventory.

Pure functions over the immutable :class:`readiness.rules.Inventory` (no
Django import), shared by the drill page and the printable recovery card.
Nothing here ever shows a full phone number or e-mail address: labels go
through the core's masking (``+1 *** *** 0142``, ``a***@example.com``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import rules
from .brokers import BrokerCatalog, catalog_for
from .masking import mask_label
from .rules import duration_text
from .vocabulary import ACCESS_POINTS, BACKUP_FACTORS, DEVICE_KIND_WORDS, RECOVERY_KIND_TITLES, join_words

__all__ = ["duration_text", "reentry_steps"]

# Broker second factors that live on a phone, and how each is normally passed.
PHONE_FACTORS = {"ib_key": "IB Key", "authenticator_app": "authenticator app", "sms": "SMS number"}
USUAL_FACTOR = {
    "ib_key": "Approve the IB Key notification on your phone",
    "authenticator_app": "Enter the code from your authenticator app",
    "sms": "Enter the SMS code sent to your phone",
}


@dataclass(frozen=True)
class Step:
    """One thing to do to get back in; ``gap`` marks a step the inventory cannot support yet."""

    title: str
    detail: str
    gap: bool = False
    fix_url: str = ""


def device_text(device: rules.Device, catalog: BrokerCatalog | None = None) -> str:
    name = catalog.point_name if catalog else (lambda p: ACCESS_POINTS.get(p, p))
    points = ", ".join(sorted(name(p) for p in device.platforms if p != "api"))
    kind = DEVICE_KIND_WORDS.get(device.kind, device.kind)
    return f"'{device.name}' ({kind}{': ' + points if points else ''})"


# Recovery methods that live on a phone: gone with it when a phone or tablet is lost.
ON_A_PHONE = frozenset({"phone", "authenticator"})


def went_with(method: rules.RecoveryMethod, lost: rules.Device | None) -> bool:
    """Whether a recovery method is unusable once ``lost`` is gone.

    A recovery phone number and an authenticator app live on the phone; a
    secondary device is gone if its label names the lost device.
    """
    if lost is None:
        return False
    if lost.kind in ("mobile", "tablet") and method.kind in ON_A_PHONE:
        return True
    return method.kind == "secondary_device" and lost.name.casefold() in method.label.casefold()


def _backup_factors(inventory: rules.Inventory, lost: rules.Device | None = None) -> list[rules.RecoveryMethod]:
    return [m for m in inventory.recovery_methods if m.kind in BACKUP_FACTORS and not went_with(m, lost)]


def _factor_text(method: rules.RecoveryMethod) -> str:
    return f"{RECOVERY_KIND_TITLES.get(method.kind, method.kind).lower()} '{mask_label(method.kind, method.label)}'"


def reentry_steps(
    inventory: rules.Inventory,
    as_of: date,
    limits: rules.Limits,
    *,
    lost_device: str | None = None,
    support_contact: str = "",
) -> tuple[Step, ...]:
    """The steps back into the broker account after losing ``lost_device``.

    Without a lost device (the recovery card), the steps cover losing any one
    device. Steps the inventory cannot support are kept and marked as gaps, so
    that a drill shows what is missing instead of hiding it.
    """
    lost = next((d for d in inventory.devices if d.name == lost_device), None) if lost_device else None
    others = [d for d in rules.qualifying_devices(inventory, as_of, limits) if d.name != lost_device]
    # A phone first when a computer is lost, a computer first when a phone is lost.
    lost_is_mobile = lost is not None and lost.kind in ("mobile", "tablet")
    others.sort(key=lambda d: ((d.kind in ("mobile", "tablet")) == lost_is_mobile, d.name))
    broker = inventory.profile.broker or "your broker"
    catalog = catalog_for(inventory.profile.broker)
    support = support_contact.strip()
    steps: list[Step] = []

    if others:
        names = join_words(device_text(d, catalog) for d in others)
        title = "Switch to another trusted device" if lost_device else "Switch to one of your trusted devices"
        steps.append(Step(title, f"Sign in to {broker} on {names}."))
    else:
        steps.append(
            Step(
                "Switch to another trusted device",
                "You have no other validated device. Validate a second one now, in calm times: "
                "a new machine may be held for verification during a loss.",
                gap=True,
                fix_url="devices:device_list",
            )
        )

    mfa = inventory.profile.broker_mfa
    backups = _backup_factors(inventory, lost)
    backup_text = join_words(_factor_text(m) for m in backups)
    if mfa == "hardware_key":
        detail = "Use your hardware key; it does not depend on the lost device."
        if backups:
            detail += f" If it is gone too, use your {backup_text}."
        steps.append(Step("Pass the second factor", detail))
    elif backups:
        if lost_is_mobile and mfa in PHONE_FACTORS:
            lead = f"Your {PHONE_FACTORS[mfa]} went with '{lost_device}': "
        else:
            lead = f"{USUAL_FACTOR.get(mfa, 'Pass the broker’s second-factor check')}, or "
        steps.append(Step("Pass the second factor", f"{lead}use your {backup_text}."))
    else:
        steps.append(
            Step(
                "Pass the second factor",
                "You have no backup factor (authenticator, backup codes, hardware key or secondary device) "
                "recorded; a lost phone can lock you out.",
                gap=True,
                fix_url="devices:recovery_list",
            )
        )

    # Never send codes to a number whose phone is the one lost.
    contacts = [m for m in inventory.recovery_methods if m.kind in ("phone", "email") and not went_with(m, lost)]
    if contacts:
        steps.append(
            Step(
                "Confirm who you are",
                "If the broker asks, codes and links go to "
                + join_words(_factor_text(m) for m in contacts)
                + ".",
            )
        )
    else:
        gone = any(m.kind in ("phone", "email") for m in inventory.recovery_methods)
        steps.append(
            Step(
                "Confirm who you are",
                (
                    f"Your only recovery contact went with '{lost_device}'; add a recovery e-mail so the broker can reach you."
                    if gone
                    else "No recovery phone or e-mail is on record; the broker has nowhere to send a code."
                ),
                gap=True,
                fix_url="devices:recovery_list",
            )
        )

    if support:
        steps.append(Step(f"Call {broker} support if you are stuck", f"Support: {support}."))
    else:
        steps.append(
            Step(
                f"Call {broker} support if you are stuck",
                f"No support contact saved; add it to your profile so it is on your recovery card ({catalog.support}).",
                gap=True,
                fix_url="checklist:profile",
            )
        )

    automations = rules.active_automations(inventory)
    if automations:
        names = join_words(f"'{a.name}' ({a.on_auth_failure} on auth failure)" for a in automations)
        steps.append(Step("Check your automations", f"Confirm that {names} did what you planned."))

    lost_name = f"'{lost_device}'" if lost_device else "the lost device"
    steps.append(
        Step(
            "Report the lost device",
            f"Mark {lost_name} lost in Gatecheck and revoke its access at {broker}.",
        )
    )
    if catalog.lost_device_steps:
        # The broker's own procedure for a lost phone or second factor (readiness.brokers, cited there).
        steps.append(Step(f"If the second factor went with it ({catalog.name})", " ".join(catalog.lost_device_steps)))
    steps.append(
        Step(
            "Confirm you are back in",
            "See your positions and open an order ticket" + (", then press \u201cI\u2019m back in\u201d." if lost_device else "."),
        )
    )
    return tuple(steps)
