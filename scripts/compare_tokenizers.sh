#!/usr/bin/env bash
# Train the pipeline twice on the same data — JiebaTokenizer with data/jieba (the shipped
# config) and a blank spaCy "zh" pipeline with spaCy's jieba segmenter — and measure both
# on the held-out set. Usage: scripts/compare_tokenizers.sh (from the project root).
set -euo pipefail
ENGINE=.venv-engine/bin
OUT=models/compare
mkdir -p "$OUT"
# A blank pipeline saved by the same spaCy version that loads it (nothing downloaded).
PYTHONPATH=. $ENGINE/python - <<'PY'
import spacy
nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
nlp.to_disk("models/compare/spacy_zh_blank")
PY
sed -e 's#  - name: JiebaTokenizer#  - name: SpacyNLP\n    model: models/compare/spacy_zh_blank\n  - name: SpacyTokenizer#' \
    -e '/dictionary_path: data\/jieba/d' config.yml > "$OUT/config_spacy.yml"
for variant in jieba spacy; do
  config=config.yml
  [ "$variant" = spacy ] && config="$OUT/config_spacy.yml"
  start=$SECONDS
  PYTHONPATH=. $ENGINE/rasa train nlu --config "$config" --out "$OUT" --fixed-model-name "$variant" \
    > "$OUT/train_$variant.log" 2>&1
  echo "== $variant: trained in $((SECONDS - start)) s," \
       "$(grep -c 'Misaligned entity annotation' "$OUT/train_$variant.log" || true) misaligned entity warnings"
  PYTHONPATH=. $ENGINE/python scripts/eval_nlu.py --model "$OUT/$variant.tar.gz" \
    --out "$OUT/eval_$variant.json" | grep -E "^==|accuracy" || true
done
