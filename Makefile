# Quick start:  make demo   (set up and run the monthly statement cycle on demo data)
#               make test   (set up with test extras and run the test suite)
PYTHON    ?= python3
VENV      := .venv
CCM       := $(VENV)/bin/ccm
CUSTOMERS ?= 500
CYCLE     ?= 2026-11
DEMO      := var/demo

.PHONY: demo test bench clean-demo clean

$(VENV)/bin/python:
	@sh scripts/os-deps.sh venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@sh scripts/os-deps.sh demo
	$(CCM) db upgrade
	$(CCM) demo data --customers $(CUSTOMERS) --cycle $(CYCLE) --history 12 --out $(DEMO)
	$(CCM) customers import $(DEMO)/customers.csv
	$(CCM) feed import $(DEMO)/history.jsonl
	$(CCM) feed import $(DEMO)/feed.jsonl
	$(CCM) segments create lapsing_value 'tier in ("vip", "key", "ordinary") and lifecycle == "decline"' \
	    --description "valuable customers whose spend is falling"
	$(CCM) segments create basic_plan 'attributes.plan == "basic"' --description "accounts billed with the one-page bill"
	$(CCM) segments create statement_plans 'attributes.plan != "basic"' --description "accounts sent the detailed statement"
	$(CCM) segments refresh
	@# The quick start sends everything now, at any hour: quiet hours (SMS reminders wait for the
	@# morning in each customer's time zone) are shown in the README's second step instead.
	CCM_DELIVERY__QUIET_HOURS= $(CCM) run statement --cycle $(CYCLE) --audience statement_plans
	CCM_DELIVERY__QUIET_HOURS= $(CCM) run bill --cycle $(CYCLE) --audience basic_plan
	@$(CCM) demo users

test: $(VENV)/.installed-test
	@sh scripts/os-deps.sh test
	$(VENV)/bin/lint-imports --no-cache   # the layers of ccm/ (.importlinter)
	$(VENV)/bin/pytest

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-test

# make bench ARGS="--customers 2000 --emails 20000" (python -m bench --help lists the options)
bench: $(VENV)/.installed-bench
	@sh scripts/os-deps.sh bench
	$(VENV)/bin/python -m bench $(ARGS)

clean-demo:
	rm -rf var/ccm.db var/ccm.db-wal var/ccm.db-shm var/maildir var/sms var/print var/inbox var/rejects $(DEMO)

clean: clean-demo
	rm -rf $(VENV) var
