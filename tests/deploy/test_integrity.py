"""The checksum block and the probe: damage is found before h5py parses, and a crash or a hang
of the HDF5 library on a file without the block becomes an ExportError in bounded time."""
from __future__ import annotations

import shutil
import time

import h5py
import numpy as np
import pytest

from spikecodec.deploy import integrity
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.integrity import BLOCK_SIZE, MAGIC, probe, verify
from spikecodec.errors import ExportError

from conftest import REPO, random_network, unsealed_copy

ROY = REPO / "netx_exports" / "roy_ae_digits" / "export.h5"


@pytest.fixture
def export(tmp_path):
    return write_hdf5(random_network(["dense", "dense"], seed=2), tmp_path / "net.h5")


def test_written_exports_carry_the_block_and_h5py_reads_them_unchanged(export):
    head = export.read_bytes()[:BLOCK_SIZE]
    assert head.startswith(MAGIC + b"\nblock 1\nsize ")
    assert verify(export) == "sealed"
    with h5py.File(export, "r") as f:
        assert f.userblock_size == BLOCK_SIZE and sorted(f) == ["layer", "spikecodec"]


def test_the_committed_exports_are_sealed():
    exports = sorted((REPO / "netx_exports").glob("*/export.h5"))
    assert len(exports) >= 4  # roy_ae_digits, vdib_digits, comsa_digits, vdib_blobs_delays
    for path in exports:
        assert verify(path) == "sealed", path.parent.name


@pytest.mark.parametrize("where", ["magic", "header", "padding", "content", "last byte"])
def test_any_flipped_byte_is_reported_as_damage_before_parsing(export, where, monkeypatch):
    data = bytearray(export.read_bytes())
    offset = {"magic": 3, "header": 40, "padding": BLOCK_SIZE - 1, "content": BLOCK_SIZE + 100,
              "last byte": len(data) - 1}[where]
    data[offset] ^= 0x10
    export.write_bytes(bytes(data))
    monkeypatch.setattr(h5py, "File", None)  # h5py must not even be asked
    with pytest.raises(ExportError, match="damaged"):
        read_hdf5(export)


@pytest.mark.parametrize("change", ["truncate", "append"])
def test_truncated_or_extended_files_are_damaged(export, change):
    data = export.read_bytes()
    export.write_bytes(data[:-7] if change == "truncate" else data + b"\0")
    with pytest.raises(ExportError, match="truncated or extended"):
        read_hdf5(export)


def test_files_without_the_block_are_probed_then_read(export, tmp_path, monkeypatch):
    plain = unsealed_copy(export, tmp_path / "plain.h5")
    calls = []
    monkeypatch.setattr("spikecodec.deploy.hdf5.probe", lambda path, **kw: calls.append(path))
    assert verify(plain) == "unsealed"
    net = read_hdf5(plain)
    assert calls == [plain] and len(net.layers) == 2
    calls.clear()
    read_hdf5(export)
    assert calls == []  # a sealed file needs no probe


def test_a_crash_in_the_hdf5_library_becomes_an_export_error(tmp_path):
    plain = unsealed_copy(ROY, tmp_path / "plain.h5")
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(ExportError, match="crashed reading the file"):
        probe(plain, program=crash)


def test_a_hang_in_the_hdf5_library_is_stopped_within_the_timeout(tmp_path):
    plain = unsealed_copy(ROY, tmp_path / "plain.h5")
    tic = time.monotonic()
    with pytest.raises(ExportError, match="did not finish reading the file within 1 s"):
        probe(plain, timeout=1, program="import time; time.sleep(60)")
    assert time.monotonic() - tic < 10


def test_the_real_probe_refuses_junk_and_truncated_plain_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 40)
    with pytest.raises(ExportError, match="not a readable HDF5 file"):
        read_hdf5(junk)
    plain = unsealed_copy(ROY, tmp_path / "plain.h5")
    data = plain.read_bytes()
    plain.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="not a readable HDF5 file"):
        read_hdf5(plain)


def test_the_probe_refuses_a_declared_size_beyond_the_file(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/weight", shape=(1 << 20, 1 << 12), dtype=np.float32)
    with pytest.raises(ExportError, match="more than the file can hold"):
        read_hdf5(path)


def test_seal_refuses_a_file_without_a_user_block(tmp_path):
    plain = unsealed_copy(ROY, tmp_path / "plain.h5")
    before = plain.read_bytes()
    with pytest.raises(ExportError, match="no HDF5 superblock at byte 512"):
        integrity.seal(plain)
    assert plain.read_bytes() == before


def test_a_file_copied_byte_for_byte_stays_sealed(tmp_path):
    copy = shutil.copyfile(ROY, tmp_path / "copy.h5")
    assert verify(copy) == "sealed"
