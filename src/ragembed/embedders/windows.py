"""What a model's window cuts: a transformer embeds at most its window of word pieces (its
`max_seq_length`, special tokens included) and drops the rest of a longer text without a word.
Counting the word pieces of every text with the model's own tokenizer says how many texts were cut
and by how much, so indexing can say so instead of staying silent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Truncation:
    """Of `total` texts, `cut` were longer than `window` word pieces (the longest: `longest`)."""

    embedder: str
    window: int
    cut: int
    total: int
    longest: int

    def message(self) -> str:
        return (
            f"{self.cut} of {self.total} texts are longer than {self.embedder}'s window of {self.window} word "
            f"pieces (the longest has {self.longest}): only their first {self.window} were embedded, and the "
            "rest of each cannot be found by this embedder's strategies. Split long documents into passages "
            "before indexing, or use a model with a longer window"
        )


def truncation(tokenizer: Any, texts: Sequence[str], window: int, embedder: str, added: int = 0) -> Truncation | None:
    """How the window cuts `texts`, counting word pieces with the model's tokenizer (special tokens
    included, plus `added` more the model inserts, such as ColBERT's [D] marker); None if none is cut."""
    encoded = tokenizer(list(texts), add_special_tokens=True, verbose=False)  # no "longer than" log line
    lengths = [len(ids) + added for ids in encoded["input_ids"]]
    cut = [n for n in lengths if n > window]
    if not cut:
        return None
    return Truncation(embedder, window, len(cut), len(lengths), max(cut))
