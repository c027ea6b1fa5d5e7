# Ponte: `make run` runs a development gateway, `make test` runs the tests.
# Both set up what they need first (see README.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= etc/ponte.conf
# Debian packages: to build the environment, and for the tests
# (openssl: s_client probes of the TLS settings; tinyproxy: a real HTTP proxy;
# xvfb, xdotool, python3-tk: the agent's and console's windows on a private display).
BUILD_DEBS := python3-venv
TEST_DEBS := openssl tinyproxy xvfb xdotool python3-tk
BENCH_DEBS := haproxy openssl

export PYTHONPATH := $(CURDIR)

.PHONY: run test init venv lock bench bench-transports bench-session bench-screen bench-recording bench-console clean

run: $(BIN)/.ready
	@test -d var || $(BIN)/ponte-admin --config $(CONFIG) init
	exec $(BIN)/twistd --nodaemon --pidfile= ponte --config $(CONFIG)

test: $(BIN)/.ready
	@tools/ensure-debs $(TEST_DEBS)
	$(BIN)/trial --jobs=2 tests

init: $(BIN)/.ready
	$(BIN)/ponte-admin --config $(CONFIG) init

venv: $(BIN)/.ready

$(BIN)/.ready: requirements.lock setup.cfg
	$(PYTHON) -m venv $(VENV) || { tools/ensure-debs $(BUILD_DEBS) && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# Re-pin requirements.lock from requirements.in (needs the package registry).
lock: $(BIN)/.ready
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras -o requirements.lock requirements.in
	tools/drop-from-lock requirements.lock evdev

bench: $(BIN)/.ready
	@tools/ensure-debs $(BENCH_DEBS)
	$(BIN)/python bench/relay/run.py

bench-transports: $(BIN)/.ready
	@tools/ensure-debs tinyproxy squid
	$(BIN)/python bench/transports/run.py

bench-session: $(BIN)/.ready
	$(BIN)/python bench/session/run.py

bench-screen: $(BIN)/.ready
	@tools/ensure-debs xvfb xdotool x11vnc python3-tk
	$(BIN)/python bench/screen/run.py

bench-recording: $(BIN)/.ready
	$(BIN)/python bench/recording/run.py

bench-console: $(BIN)/.ready
	@tools/ensure-debs xvfb xdotool python3-tk
	$(BIN)/python bench/console/run.py

clean:
	rm -rf $(VENV) *.egg-info _trial_temp* twisted/plugins/dropin.cache
