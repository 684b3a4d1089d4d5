"""The names of the method's variants, in one place.

A rule is a kind, ``k`` (the k most active filters of a layer) or ``q`` (the q %
most active), with a whole-number value. Step 3 counts the tags of an image's
active filters over all layers and over the last layer alone, so every rule
kind comes in two *variants*: ``k``, ``k_ll``, ``q`` and ``q_ll``. Titles,
variable names (``y_k_ll``, ``hit_q``, ``totalhit_k``, ...) and export columns
are all derived from :data:`VARIANTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The rule kinds: "k" counts filters, "q" is a percentage of a layer's filters.
KINDS = ("k", "q")

#: What each kind selects, for titles.
KIND_TEXT = {"k": "k most active filters", "q": "q % most active filters"}


@dataclass(frozen=True)
class Variant:
    """A rule kind counted over all layers or over the last layer alone.

    Attributes:
        kind: "k" or "q".
        last_layer: True when only the last selected layer's tags count.
    """

    kind: str
    last_layer: bool

    @property
    def name(self) -> str:
        """The variant's name: ``k``, ``k_ll``, ``q`` or ``q_ll``."""
        return self.kind + ("_ll" if self.last_layer else "")

    @property
    def scope(self) -> str:
        """The layers counted: ``all`` or ``last``."""
        return "last" if self.last_layer else "all"

    @property
    def title(self) -> str:
        """E.g. ``k most active filters, last layer``."""
        layers = "last layer" if self.last_layer else "all layers"
        return f"{KIND_TEXT[self.kind]}, {layers}"

    @property
    def ranking_var(self) -> str:
        """Step 3's variable of the variant's rankings: ``y_k``, ``y_k_ll``, ..."""
        return f"y_{self.name}"

    def hit_var(self, prefix: str = "hit") -> str:
        """Step 4's variable: ``hit_k``, ``totalhit_q_ll``, ``meanhit_k``, ..."""
        return f"{prefix}_{self.name}"


#: The variants in step 4's order: k, q, k_ll, q_ll.
VARIANTS = tuple(Variant(kind, last) for last in (False, True) for kind in KINDS)

#: The variants in step 3's order (its class files): k, k_ll, q, q_ll.
RANKING_ORDER = tuple(sorted(VARIANTS, key=lambda v: (v.kind, v.last_layer)))

#: Step 4's groups of hit rates: per class, pooled over images, mean of classes.
HIT_PREFIXES = ("hit", "totalhit", "meanhit")

#: Step 3's ranking variables, in file order: y_k, y_k_ll, y_q, y_q_ll.
RANKING_VARS = tuple(v.ranking_var for v in RANKING_ORDER)

#: Step 4's variables, in file order: hit_k, hit_q, ..., meanhit_q_ll.
HIT_VARS = tuple(v.hit_var(p) for p in HIT_PREFIXES for v in VARIANTS)


def variant(name: str) -> Variant:
    """Return the variant called ``name`` (``k``, ``k_ll``, ``q`` or ``q_ll``).

    Raises:
        KeyError: no variant has that name.
    """
    return {v.name: v for v in VARIANTS}[name]
