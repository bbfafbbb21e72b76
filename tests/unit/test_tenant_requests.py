"""What the /api/tenants… routes accept: every refusal names the field and the value."""

from __future__ import annotations

import pytest

from shared.http_requests import (
    MAX_NUMBERS_BODY_BYTES,
    NumbersImportRequest,
    RequestError,
    TenantAddRequest,
    TenantChangeRequest,
    TenantPath,
)

TENANT = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"


def test_a_tenant_path_must_be_a_guid() -> None:
    assert TenantPath.from_route({"tenantId": TENANT}, "x").key == TENANT
    with pytest.raises(RequestError) as refused:
        TenantPath.from_route({"tenantId": "contoso"}, "POST /api/tenants/{tenantId}/sync")
    assert refused.value.field == "tenantId"
    assert '"contoso"' in refused.value.message


def test_a_change_needs_who_and_takes_release_numbers() -> None:
    request = TenantChangeRequest.from_http(
        {}, b'{"changedBy": "ops@operator.example", "releaseNumbers": true}', "remove")

    assert request.changed_by == "ops@operator.example"
    assert request.release_numbers is True
    with pytest.raises(RequestError, match="changedBy: missing"):
        TenantChangeRequest.from_http({}, b"{}", "pause")
    with pytest.raises(RequestError, match="unknown query parameter"):
        TenantChangeRequest.from_http({"changedBy": "x"}, b"{}", "pause")
    with pytest.raises(RequestError) as refused:
        TenantChangeRequest.from_http({}, b'{"changedBy": "x", "force": true}', "pause")
    assert refused.value.field == "force"


def test_an_added_tenant_keeps_its_record_fields_for_the_registry() -> None:
    request = TenantAddRequest.from_http(
        {"code": "function-key"},
        b'{"createdBy": "ops", "tenantId": "t", "displayName": "Contoso", "rules": {}}',
    )

    assert request.created_by == "ops"
    assert request.record_fields == {"tenantId": "t", "displayName": "Contoso", "rules": {}}
    with pytest.raises(RequestError) as refused:
        TenantAddRequest.from_http({}, b'{"tenantId": "t"}')
    assert refused.value.field == "createdBy"
    with pytest.raises(RequestError) as too_large:
        TenantAddRequest.from_http({}, b" " * (64 * 1024 + 1))
    assert too_large.value.status == 413


def test_a_numbers_import_is_utf8_text_of_bounded_size() -> None:
    request, text = NumbersImportRequest.from_http(
        {"changedBy": "ops"}, "\ufeff+31855363000,+31855363099\n".encode())

    assert request.changed_by == "ops"
    assert text == "+31855363000,+31855363099\n"
    with pytest.raises(RequestError, match="not UTF-8"):
        NumbersImportRequest.from_http({"changedBy": "ops"}, b"\xff\xfe+3185")
    with pytest.raises(RequestError) as too_large:
        NumbersImportRequest.from_http({"changedBy": "ops"}, b"1" * (MAX_NUMBERS_BODY_BYTES + 1))
    assert too_large.value.status == 413
    with pytest.raises(RequestError, match="changedBy: missing"):
        NumbersImportRequest.from_http({}, b"+31855363000")


def test_the_cli_by_option_follows_the_same_rules() -> None:
    assert TenantChangeRequest.from_options(" ops ") == "ops"
    with pytest.raises(RequestError) as refused:
        TenantChangeRequest.from_options("  ")
    assert refused.value.field == "--by"
