"""Metalink 3 and 4 documents validate against their schemas and carry sizes and hashes."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from portal.files.metalink import METALINK3_NS, METALINK4_NS, MetalinkFile, metalink_bytes

SCHEMAS = Path(__file__).parent / "schemas"
PUBLISHED = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
FILES = [
    MetalinkFile(name="a.nc", size=10, md5="0" * 32, sha256="a" * 64,
                 urls=("https://portal.example/api/v1/rs-order/orders/public/files/1?orderToken=t&scope=alpha",),
                 mime_type="application/x-netcdf", identity="URN:AIP:DATA:alpha:1:V1"),
    MetalinkFile(name="été & <co> (1).txt", size=0, md5="d41d8cd98f00b204e9800998ecf8427e",
                 sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                 urls=("http://x/y?a=1&b=2",), mime_type="text/plain"),
]


def validator(version: int):
    if version == 3:
        return etree.XMLSchema(etree.parse(str(SCHEMAS / "metalink3.xsd")))
    return etree.RelaxNG(etree.parse(str(SCHEMAS / "metalink4.rng")))


@pytest.mark.parametrize("version", [3, 4])
def test_metalink_validates_against_its_schema(version):
    doc = etree.fromstring(metalink_bytes(FILES, version=version, published=PUBLISHED))
    schema = validator(version)
    assert schema.validate(doc), schema.error_log


def test_schemas_reject_what_they_should():
    # The validators are not vacuous: a hash with a bad type or a file without name fails.
    bad3 = metalink_bytes(FILES, version=3, published=PUBLISHED).replace(b'type="md5"', b'type="md6"')
    assert not validator(3).validate(etree.fromstring(bad3))
    bad4 = metalink_bytes(FILES, version=4, published=PUBLISHED).replace(b"<size>10</size>", b"<size>-1</size>")
    assert not validator(4).validate(etree.fromstring(bad4))


def test_metalink3_content():
    doc = etree.fromstring(metalink_bytes(FILES, version=3, published=PUBLISHED))
    ns = {"m": METALINK3_NS}
    assert doc.get("version") == "3.0" and doc.get("pubdate") == "Wed, 04 Mar 2026 05:06:07 GMT"
    files = doc.findall("m:files/m:file", ns)
    assert [f.get("name") for f in files] == ["a.nc", "été & <co> (1).txt"]
    first = files[0]
    assert first.findtext("m:size", namespaces=ns) == "10"
    assert first.findtext("m:mimetype", namespaces=ns) == "application/x-netcdf"
    assert first.findtext("m:verification/m:hash[@type='md5']", namespaces=ns) == "0" * 32
    assert first.findtext("m:verification/m:hash[@type='sha256']", namespaces=ns) == "a" * 64
    url = first.find("m:resources/m:url", ns)
    assert url.get("type") == "https" and "orderToken=t&scope=alpha" in url.text
    assert files[1].findtext("m:resources/m:url", namespaces=ns) == "http://x/y?a=1&b=2"


def test_metalink4_content():
    doc = etree.fromstring(metalink_bytes(FILES, version=4, published=PUBLISHED))
    ns = {"m": METALINK4_NS}
    assert doc.findtext("m:published", namespaces=ns) == "2026-03-04T05:06:07Z"
    first = doc.find("m:file", ns)
    assert first.findtext("m:size", namespaces=ns) == "10"
    assert first.findtext("m:hash[@type='sha-256']", namespaces=ns) == "a" * 64
    assert first.findtext("m:hash[@type='md5']", namespaces=ns) == "0" * 32
    assert first.find("m:url", ns).get("priority") == "1"
