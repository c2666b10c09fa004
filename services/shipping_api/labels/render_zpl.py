"""ZPL II for thermal label printers (203 dpi, 4 x 6 inch stock), one label per parcel."""

from __future__ import annotations

from collections.abc import Sequence

from services.shipping_api.labels.model import Label

_ESCAPES = {"_": "_5F", "^": "_5E", "~": "_7E"}


def _field(text: str) -> str:
    """Field data with ZPL's control characters hex-escaped (``^FH_``)."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def _text(x: int, y: int, size: int, text: str) -> str:
    return f"^FO{x},{y}^A0N,{size},{size}^FH_^FD{_field(text)}^FS"


def _label(label: Label) -> str:
    parts = ["^XA", "^CI28", "^PW812", "^LL1218", "^LH0,0"]
    parts.append(_text(40, 30, 50, label.carrier))
    parts.append(_text(520, 40, 36, label.service.replace("_", " ").upper()))
    parts.append("^FO30,95^GB752,3,3^FS")
    y = 115
    parts.append(_text(40, y, 22, "AFZENDER / FROM"))
    for line in label.sender.lines():
        y += 28
        parts.append(_text(40, y, 26, line))
    y += 50
    parts.append(_text(40, y, 22, "ONTVANGER / TO"))
    for index, line in enumerate(label.recipient.lines()):
        y += 44
        parts.append(_text(40, y, 40 if index == 0 else 36, line))
    parts.append(f"^FO70,{y + 80}^BY3,3,200^BCN,200,Y,N,N^FD{_field(label.tracking_code)}^FS")
    parts.append("^FO30,1080^GB752,3,3^FS")
    parts.append(_text(40, 1110, 70, f"{label.sequence}/{label.count}"))
    parts.append(_text(520, 1110, 30, f"{label.weight_grams / 1000:.2f} kg"))
    if label.reference:
        parts.append(_text(520, 1150, 26, f"Ref: {label.reference}"[:30]))
    if label.is_sandbox:
        parts.append(_text(200, 20, 30, "TEST - NIET VERZENDEN"))
    parts.append("^XZ")
    return "\n".join(parts)


def render_zpl(labels: Sequence[Label]) -> str:
    return "\n".join(_label(label) for label in labels) + "\n"
