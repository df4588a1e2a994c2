"""Chinese licence-plate text: normalisation and validation (no images, no OCR).

The rule engine hashes plates with this normalisation and the detection worker reads plates
with it, so it lives here, below both. A valid plate is a province character, the
issuing-authority letter and five characters (ordinary plates, blue or yellow) or six
(new-energy plates, green):

- ordinary: ``沪A12345``, ``京N8P8F8``; the last character may be 学/警/挂/港/澳/领;
- new-energy small cars: ``粤BD12345`` (D…K then a letter or digit then four digits);
- new-energy large vehicles: ``苏A12345D`` (five digits then D or F).

Letters I and O are never used on plates, so a read ``O``/``I`` among the serial characters is
taken as ``0``/``1``.
"""

from __future__ import annotations

import re
import unicodedata

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "A-HJ-NP-Z"  # no I, no O
_SERIAL = f"[{_LETTER}0-9]"
_ORDINARY = re.compile(f"^[{PROVINCES}][{_LETTER}]{_SERIAL}{{4}}(?:{_SERIAL}|[学警挂港澳领])$")
_NEW_ENERGY = re.compile(f"^[{PROVINCES}][{_LETTER}](?:[A-HJK]{_SERIAL}[0-9]{{4}}|[0-9]{{5}}[DF])$")
_JUNK = re.compile(r"[\s.\-·•_:：]+")
_SERIAL_FIX = str.maketrans({"O": "0", "I": "1"})


def normalise_plate(text: str) -> str:
    """Upper case, full-width folded, spaces/dots/hyphens/middle dots removed; the Chinese
    province character is kept (``"沪a·123-45"`` → ``"沪A12345"``)."""
    return _JUNK.sub("", unicodedata.normalize("NFKC", text)).upper()


def plate_kind(plate: str) -> str | None:
    """``"ordinary"`` or ``"new-energy"`` for a valid normalised plate, else None."""
    if _NEW_ENERGY.match(plate):
        return "new-energy"
    if _ORDINARY.match(plate):
        return "ordinary"
    return None


def parse_plate(text: str) -> str | None:
    """The valid normalised plate in OCR `text`, or None.

    The text is normalised, I/O among the serial characters become 1/0, and the first run that
    starts at a province character, validates (new-energy length tried first) and is not
    followed by another letter or digit is returned."""
    clean = normalise_plate(text)
    for start, char in enumerate(clean):
        if char not in PROVINCES:
            continue
        for length in (8, 7):
            candidate = clean[start : start + length]
            after = clean[start + length : start + length + 1]
            if len(candidate) < length or (after.isascii() and after.isalnum()):
                continue  # too short, or only the start of a longer run: not a whole plate
            candidate = candidate[:2] + candidate[2:].translate(_SERIAL_FIX)
            if plate_kind(candidate) is not None:
                return candidate
    return None
