"""sslyze check of a TLS endpoint against Mozilla's intermediate profile (nginx and stack tests)."""

from pathlib import Path


def check_mozilla_intermediate(port: int, cafile: Path):
    """Scan with sslyze and check against Mozilla's intermediate profile (raises on any deviation)."""
    from sslyze import (
        CertificateInfoExtraArgument,
        Scanner,
        ScanCommandsExtraArguments,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    # The certificates are self-signed: rather than excluding the checker's path-validation check,
    # sslyze gets the served certificate as an extra trust store, so every Mozilla check runs.
    request = ServerScanRequest(
        server_location=ServerNetworkLocation("localhost", port, ip_address="127.0.0.1"),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=cafile)
        ),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    # Raises ServerNotCompliantWithTlsConfiguration listing every deviation.
    check_server_against_tls_configuration(result, MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE))
    return result.scan_result
