# Sourced by start.sh, test.sh and .ci/run: create .venv and install the pinned requirements
# (only when the files changed since the last install), then activate it. The file to install is
# the first argument: requirements.txt (what the service runs with; start.sh) or
# requirements-dev.txt (that plus tests, lint and benchmarks; test.sh).
wanted_file=${1:-requirements.txt}
python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
. .venv/bin/activate
stamp=.venv/.installed-$(basename "$wanted_file" .txt).sha256
want=$(cat requirements.txt "$wanted_file" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -r "$wanted_file"
  echo "$want" > "$stamp"
fi
