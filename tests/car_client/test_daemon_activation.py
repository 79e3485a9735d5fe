"""``car-client activate`` against a real local HTTP endpoint, and config handling."""

import json
import stat

import pytest
from click.testing import CliRunner

from car_client.cli import main
from car_client.daemon.config import ConfigError, load_config
from tests.car_client.peers import CarServerPeer, free_port


@pytest.fixture
def server():
    peer = CarServerPeer(codes={"GOOD-CODE": "valid", "OLD-CODE": "expired",
                                "USED-CODE": "used"}, heartbeat_interval_s=1.5).start()
    yield peer
    peer.stop()


def test_activation_writes_a_0600_config_with_the_token(server, tmp_path):
    path = tmp_path / "cfg" / "config.json"
    out = CliRunner().invoke(main, ["activate", "--server", server.url + "/", "--code",
                                    "GOOD-CODE", "--config", str(path), "--hostname", "car-09"])
    assert out.exit_code == 0, out.output
    assert "activated as car-09" in out.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert server.tokens[data["token"]] == data["car_id"]  # the token the server issued
    assert (data["server"], data["hostname"], data["heartbeat_interval_s"]) == \
        (server.url, "car-09", 1.5)
    assert load_config(path).token == data["token"]
    # the code is now used: a second activation is refused and the file stays as it was
    again = CliRunner().invoke(main, ["activate", "--server", server.url, "--code", "GOOD-CODE",
                                      "--config", str(path)])
    assert again.exit_code == 1
    assert "activation code already used" in again.output
    assert json.loads(path.read_text()) == data


@pytest.mark.parametrize("code, words", [("OLD-CODE", "activation code expired"),
                                         ("NOPE", "unknown activation code")])
def test_refused_codes_give_a_clear_message(server, tmp_path, code, words):
    path = tmp_path / "config.json"
    out = CliRunner().invoke(main, ["activate", "--server", server.url, "--code", code,
                                    "--config", str(path)])
    assert out.exit_code == 1
    assert f"activation code refused by the server: {words}" in out.output
    assert "Ask an admin or operator for a new activation code" in out.output
    assert not path.exists()


def test_unreachable_server_and_env_config_path(tmp_path, monkeypatch):
    path = tmp_path / "env-config.json"
    monkeypatch.setenv("DREM_CAR_CONFIG", str(path))
    url = f"http://127.0.0.1:{free_port()}"
    out = CliRunner().invoke(main, ["activate", "--server", url, "--code", "X"])
    assert out.exit_code == 1
    assert f"cannot reach the drem server at {url}" in out.output
    bad = CliRunner().invoke(main, ["activate", "--server", "drem.local", "--code", "X"])
    assert "server URL must look like http://host:port" in bad.output
    # run without activation: a clear message and exit status 2
    run = CliRunner().invoke(main, ["run"])
    assert run.exit_code == 2
    assert f"no car config at {path}: activate this car first" in run.output


def test_incomplete_config_is_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"server": "http://x:1", "car_id": 3}))
    with pytest.raises(ConfigError, match="lacks token"):
        load_config(path)
