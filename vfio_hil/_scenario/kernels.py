"""Kernel ranges in expectations and requirements: ``>=6.5``, ``==6.12``, ``>=6.1,<6.9``.

The syntax and matching are ``vfio_hil._kernel_range``'s (the plugin's
``vfio_kernel`` marker uses the same): a comparison looks at as many version
parts as it names, so ``==6.12`` holds for every 6.12.y and ``<6.5`` does not
hold for 6.5.3; comma-joined comparisons must all hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfio_hil._kernel_range import in_range, parse_range

__all__ = ["KernelRange", "looks_like_range"]


def looks_like_range(text: str) -> bool:
    """Is ``text`` meant as a kernel range (it starts with a comparison)?"""
    return text.lstrip()[:1] in ("<", ">", "=", "!")


@dataclass(frozen=True)
class KernelRange:
    text: str

    @classmethod
    def parse(cls, text: str) -> KernelRange:
        """The range; ValueError saying the form if it is malformed."""
        parse_range(text)
        return cls(text)

    def contains(self, version: tuple[int, int, int]) -> bool:
        return in_range(version, self.text)

    def __str__(self) -> str:
        return self.text
