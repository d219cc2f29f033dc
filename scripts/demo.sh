#!/usr/bin/env bash
# The main job end to end on local defaults (run by `make demo` after `make services`):
# knowledge graph → GNN embeddings → SYNTHETIC demo videos → a small model → profiles through a real Celery worker →
# a profile table and three named queries. Every number this prints about videos is measured on SYNTHETIC data.
set -euo pipefail
cd "$(dirname "$0")/.."
OVP="${OVP:?path of the ovp command}"
CELERY="$(dirname "$OVP")/celery"
DEMO="${OVP_DEMO_DIR:-.ovp/demo}"
MODEL="${OVP_MODEL_DIR:-.ovp/model}"
VIDEOS="${OVP_DEMO_VIDEOS:-240}"
# The default encoders (EfficientNet-Lite0 with ImageNet weights, bge-small-zh-v1.5), with K=4 keyframes for time on a
# CPU (K=8 is the default for real use).
export OVP_KEYFRAMES="${OVP_KEYFRAMES:-4}" OVP_MODEL_DIR="$MODEL"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "knowledge graph: HPO, HPO annotations, ICD-10 chapter VII, bilingual lexicon"
"$OVP" kg build
step "R-GCN entity embeddings (link prediction; minutes on CPU)"
"$OVP" kg embed --no-baseline
step "SYNTHETIC demo set: $VIDEOS videos + 2 corrupt files"
"$OVP" demo-data "$DEMO" --videos "$VIDEOS" --seed 0 --corrupt 2
step "train a small fusion model (SYNTHETIC data)"
"$OVP" train "$DEMO/manifest.jsonl" --out "$MODEL" --seed 0
step "evaluate it on its held-out test split (SYNTHETIC data)"
"$OVP" evaluate "$DEMO/manifest.jsonl" --model "$MODEL" --json > "$MODEL/demo_evaluation.json"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print('SYNTHETIC test split:', json.dumps(m['headline']))" "$MODEL/demo_evaluation.json"

step "profile the demo videos through a real Celery worker"
mkdir -p .ovp/run .ovp/logs
"$CELERY" -A worker.app worker -Q batches,profiles --concurrency 1 --loglevel INFO -n demo@%h \
  --logfile .ovp/logs/demo-worker.log --pidfile .ovp/run/demo-worker.pid --detach
trap '[ -f .ovp/run/demo-worker.pid ] && kill "$(cat .ovp/run/demo-worker.pid)" 2>/dev/null || true' EXIT
"$OVP" profile "$DEMO/manifest.jsonl" --submit --wait 1200

step "named queries (cypher/queries/)"
echo "-- videos about glaucoma, most popular first (predicted)"
"$OVP" query disease_videos_by_popularity -p disease_id=OVP:glaucoma -p limit=5
echo "-- videos about cataract whose predicted quality is low (review candidates)"
"$OVP" query disease_low_quality_videos -p disease_id=OVP:cataract -p max_quality=3 -p limit=5
echo "-- entities mentioned in high- versus low-quality videos"
"$OVP" query entities_by_quality -p limit=8

step "done"
cat <<MSG
The graph, the profiles and the named queries are in Neo4j at ${OVP_NEO4J_URI:-bolt://127.0.0.1:7687}.
Open the API:   $OVP serve      then  http://127.0.0.1:8000/health  and  http://127.0.0.1:8000/openapi.json
Review pages:   $OVP raters add alice && OVP_MEDIA_ROOTS=$DEMO $OVP serve   then  http://127.0.0.1:8000/ui/
Query:          $OVP query --list
Stop services:  make stop
MSG
