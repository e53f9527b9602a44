# emotrack: `make demo` runs the whole pipeline on a synthetic corpus; `make test` runs the tests.
# Both create .venv with the pinned dependencies (requirements.txt) when it is missing.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
DEMO := demo
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: venv install demo test test-slow test-all bench bench-preprocess bench-predict bench-learn clean reproduce-huang2018 reproduce-tzirakis2017 reproduce-astnet2017 reproduce-teixeira2021

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3 setuptools==84.2.1 wheel==0.48.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

venv: $(STAMP)

# A non-editable install of the working tree, refreshed every time (a few seconds).
install: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	rm -rf build

demo: install
	$(BIN)/emotrack synth --out $(DEMO)/corpus --sessions 16 --seconds 30 --seed 0
	$(BIN)/emotrack preprocess --spec generic --root $(DEMO)/corpus --out $(DEMO)/tfr
	$(BIN)/emotrack train demo --data $(DEMO)/tfr --out $(DEMO)/runs/demo --overwrite
	$(BIN)/emotrack evaluate $(DEMO)/runs/demo

# The tests run in two processes (pytest-xdist), a test file to a process, so that module fixtures
# are made once; on 2 cores this halves the time, most of which is single-threaded graph tracing.
TEST_WORKERS ?= 2
test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

# pytest exits 5 when no test carries the mark; that is not a failure here.
test-slow: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow || [ $$? -eq 5 ]

test-all: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "slow or not slow"

# Each stage's throughput, `emotrack predict` end to end against its real-time targets, then the peak
# resident memory of one training epoch of each family at its paper's input size (16 sessions of 30 s).
bench: install
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_memory.py --max-minutes 30

# Face pipeline on a 640x360 face video: frames/s end to end and agreement with per-frame MTCNN; side by
# side with MediaPipe's per-frame face detection, in an environment of its own (MediaPipe 0.10.21 needs
# numpy < 2, emotrack pins numpy 2: it is never one of emotrack's dependencies); --workers 2 scaling.
MEDIAPIPE_VENV := .venv-mediapipe
$(MEDIAPIPE_VENV)/bin/python:
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/python -m pip install --quiet mediapipe==0.10.21

bench-preprocess: install $(MEDIAPIPE_VENV)/bin/python
	$(BIN)/python benchmarks/bench_preprocess.py --mediapipe $(MEDIAPIPE_VENV)/bin/python

# emotrack predict on a face video: frames/s of each model family against the real-time target, and
# the latency of a live stream on standard input.
bench-predict: install
	$(BIN)/python benchmarks/bench_predict.py

# Does every model family learn? Each trains at a CPU size on a synthetic corpus (minutes each) and prints
# its test CCC (raw) of arousal and valence; exits 1 when a family misses its goal. Kept in bench-learn/.
bench-learn: install
	$(BIN)/python benchmarks/bench_learn.py --work bench-learn

# A paper's tables end to end: `make reproduce-huang2018 SEWA=/data/SEWA`; SMOKE=1 runs the same
# protocol at tiny size on a synthetic corpus in the release layout (minutes on a CPU).
SMOKE_FLAG = $(if $(SMOKE),--smoke,)
reproduce-huang2018: install
	$(BIN)/emotrack reproduce huang2018 --out reproductions/huang2018 $(if $(SEWA),--sewa $(SEWA),) $(SMOKE_FLAG)

reproduce-tzirakis2017: install
	$(BIN)/emotrack reproduce tzirakis2017 --out reproductions/tzirakis2017 $(if $(RECOLA),--recola $(RECOLA),) $(SMOKE_FLAG)

# RECOLA here is the AVEC 2016 release; FER2013 the fer2013.csv file; VGGFACE the VGG-Face Keras weights.
reproduce-astnet2017: install
	$(BIN)/emotrack reproduce astnet2017 --out reproductions/astnet2017 $(if $(SEMAINE),--semaine $(SEMAINE),) \
		$(if $(RECOLA),--recola $(RECOLA),) $(if $(FER2013),--fer2013 $(FER2013),) $(if $(VGGFACE),--vggface $(VGGFACE),) \
		$(SMOKE_FLAG)

# SEWA is the AVEC 2017 release; RAFDB RAF-DB's basic-emotion folder; VGGFACE the VGG-Face Keras weights.
reproduce-teixeira2021: install
	$(BIN)/emotrack reproduce teixeira2021 --out reproductions/teixeira2021 $(if $(SEWA),--sewa $(SEWA),) \
		$(if $(RAFDB),--rafdb $(RAFDB),) $(if $(VGGFACE),--vggface $(VGGFACE),) $(SMOKE_FLAG)

clean:
	rm -rf build *.egg-info $(DEMO) bench-learn
