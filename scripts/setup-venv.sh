# Sourced by start.sh, test.sh and .ci/run: create .venv and install the pinned requirements
# (only when requirements.txt changed since the last install), then activate it.
python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
. .venv/bin/activate
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi
