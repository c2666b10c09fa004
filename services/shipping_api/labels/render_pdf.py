"""A6 PDF labels (105 x 148 mm), one page per parcel, with a Code 128 barcode of the tracking
code, drawn with reportlab."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from services.shipping_api.labels.model import Label

WIDTH, HEIGHT = A6
MARGIN = 6 * mm


def _fit(canvas: Canvas, text: str, font: str, size: float, width: float) -> str:
    """Shorten a line that would run off the label."""
    if canvas.stringWidth(text, font, size) <= width:
        return text
    while text and canvas.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _draw(canvas: Canvas, label: Label) -> None:
    inner = WIDTH - 2 * MARGIN
    top = HEIGHT - MARGIN
    canvas.setLineWidth(1)
    canvas.rect(MARGIN / 2, MARGIN / 2, WIDTH - MARGIN, HEIGHT - MARGIN)

    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(MARGIN, top - 14, label.carrier)
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawRightString(WIDTH - MARGIN, top - 14, label.service.replace("_", " ").upper())
    canvas.line(MARGIN, top - 22, WIDTH - MARGIN, top - 22)

    y = top - 34
    canvas.setFont("Helvetica", 6.5)
    canvas.drawString(MARGIN, y, "AFZENDER / FROM")
    canvas.setFont("Helvetica", 8)
    for line in label.sender.lines():
        y -= 9.5
        canvas.drawString(MARGIN, y, _fit(canvas, line, "Helvetica", 8, inner))

    y -= 16
    canvas.setFont("Helvetica", 6.5)
    canvas.drawString(MARGIN, y, "ONTVANGER / TO")
    for index, line in enumerate(label.recipient.lines()):
        font, size = ("Helvetica-Bold", 12) if index == 0 else ("Helvetica", 11)
        y -= size + 3
        canvas.setFont(font, size)
        canvas.drawString(MARGIN, y, _fit(canvas, line, font, size, inner))

    barcode = Code128(label.tracking_code, barHeight=22 * mm, barWidth=0.33 * mm, quiet=False)
    x = (WIDTH - barcode.width) / 2
    barcode.drawOn(canvas, x, 30 * mm)
    canvas.setFont("Courier-Bold", 12)
    canvas.drawCentredString(WIDTH / 2, 25 * mm, label.tracking_code)

    canvas.line(MARGIN, 21 * mm, WIDTH - MARGIN, 21 * mm)
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(MARGIN, 12 * mm, f"{label.sequence}/{label.count}")
    canvas.setFont("Helvetica", 8)
    canvas.drawRightString(WIDTH - MARGIN, 15 * mm, f"{label.weight_grams / 1000:.2f} kg")
    if label.reference:
        canvas.drawRightString(
            WIDTH - MARGIN,
            10 * mm,
            _fit(canvas, f"Ref: {label.reference}", "Helvetica", 8, 50 * mm),
        )
    if label.is_sandbox:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 26)
        canvas.setFillGray(0.6)
        canvas.translate(WIDTH / 2, HEIGHT / 2)
        canvas.rotate(35)
        canvas.drawCentredString(0, 0, "TEST - NIET VERZENDEN")
        canvas.restoreState()


def render_pdf(labels: Sequence[Label]) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A6, pageCompression=1)
    canvas.setTitle("Parcel Pro labels")
    canvas.setAuthor("Parcel Pro")
    for label in labels:
        _draw(canvas, label)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()
