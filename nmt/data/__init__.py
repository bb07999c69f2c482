"""Reading corpora, sentencepiece, batching by tokens, and the embedded toy corpus."""
