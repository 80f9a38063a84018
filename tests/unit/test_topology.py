import textwrap

import pytest

from lab.topology import TopologyError, available, load_topology

DEFAULT = (load_topology.__globals__["TOPOLOGY_DIR"] / "default.yaml").read_text()


def write(tmp_path, text):
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_default_topology_loads():
    topo = load_topology("default")
    assert topo.name == "default"
    assert topo.cache_account().name == "drlabcache"
    assert "default" in available()


def test_unknown_field_is_named_with_its_line(tmp_path):
    text = DEFAULT.replace("  location: westeurope", "  location: westeurope\n  vualt: typo")
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    err = info.value
    assert err.field == "azure.vualt"
    assert err.message == "unknown field"
    assert text.splitlines()[err.line - 1].strip() == "vualt: typo"
    assert str(err).startswith(f"{path}:{err.line}:")


def test_bad_value_in_a_list_points_at_the_item(tmp_path):
    text = DEFAULT.replace("client_id: caacac35-3946-43be-8a06-40128be4dd95", "client_id: nope")
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert info.value.field == "entra.principals.1.client_id"
    assert "client_id: nope" in text.splitlines()[info.value.line - 1]


def test_missing_required_field(tmp_path):
    text = DEFAULT.replace("  vault: drlab-vault\n", "")
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert info.value.field == "azure.vault"
    assert info.value.message == "required field is missing"
    assert text.splitlines()[info.value.line - 1].startswith("azure:")


def test_yaml_syntax_error_has_a_line(tmp_path):
    text = DEFAULT.replace("  speed: 1", "  speed: [1")
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert info.value.line is not None
    assert "YAML" in info.value.message


def test_duplicate_key_is_refused(tmp_path):
    text = DEFAULT.replace("  speed: 1", "  speed: 1\n  speed: 2")
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert info.value.field == "clock.speed"
    assert info.value.message == "duplicate key"


def test_cross_field_rule(tmp_path):
    text = DEFAULT.replace("  operator: operator", "  operator: nobody")
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert "nobody" in info.value.message


def test_unknown_service_override(tmp_path):
    text = DEFAULT + "services:\n  vcentre:\n    port: 0\n"
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text), known_services={"entra", "azurite"})
    assert info.value.field == "services.vcentre"
    assert text.splitlines()[info.value.line - 1].strip() == "vcentre:"


def test_unknown_topology_name_lists_the_available_ones():
    with pytest.raises(TopologyError) as info:
        load_topology("no-such-lab")
    assert "default" in info.value.message


def test_missing_file(tmp_path):
    with pytest.raises(TopologyError):
        load_topology(str(tmp_path / "absent.yaml"))


def test_resync_window_defaults_and_unquoted_times(tmp_path):
    replication = load_topology("default").replication
    assert replication.automatic_resync is True
    assert (replication.resync_window.start, replication.resync_window.end) == ("22:00", "06:00")
    # YAML 1.1 reads an unquoted 23:30 as a base-60 number: it still means 23:30
    text = DEFAULT.replace('    start: "22:00"', "    start: 23:30")
    topo = load_topology(write(tmp_path, text))
    assert topo.replication.resync_window.start == "23:30"


def test_bad_resync_window_time_is_named(tmp_path):
    text = DEFAULT.replace('    end: "06:00"', '    end: "6 am"')
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    assert info.value.field == "replication.resync_window.end"
