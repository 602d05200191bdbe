"""Read an OGC API Features collection with real PyQGIS, headless; print what QGIS saw as JSON.

Run with the Python that has ``qgis`` (Debian: ``/usr/bin/python3`` with ``python3-qgis``):

    python3 qgis_read.py BASE_URL COLLECTION KEY [basic|url] [PAGE_SIZE]

``basic`` uses QGIS's own Basic authentication (any user name, the API key as password);
``url`` puts the key in the URL as ``api_key=``, for clients that can only change the URL.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QGIS_AUTH_DB_DIR_PATH"] = tempfile.mkdtemp(prefix="qgis-auth-")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsAuthMethodConfig,
    QgsFeatureRequest,
    QgsVectorLayer,
)


def main() -> None:
    base, collection, key, mode, page = (sys.argv[1:] + ["basic", ""])[:5]
    paging = f" pageSize='{page}'" if page else ""
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    if mode == "basic":
        manager = QgsApplication.authManager()
        manager.setMasterPassword("gridmap-test-master", True)
        cfg = QgsAuthMethodConfig()
        cfg.setName("gridmap")
        cfg.setMethod("Basic")
        cfg.setConfig("username", "qgis")
        cfg.setConfig("password", key)
        assert manager.storeAuthenticationConfig(cfg)[0]
        uri = f"url='{base}' typename='{collection}' authcfg='{cfg.id()}'{paging}"
    elif mode == "url":
        uri = f"url='{base}?api_key={key}' typename='{collection}'{paging}"
    else:
        uri = f"url='{base}' typename='{collection}'{paging}"
    layer = QgsVectorLayer(uri, collection, "OAPIF")
    out = {"valid": layer.isValid(), "count": None, "fields": [], "names": [], "ids": []}
    if layer.isValid():
        out["fields"] = [f.name() for f in layer.fields()]
        feats = list(layer.getFeatures(QgsFeatureRequest()))
        out["count"] = len(feats)
        for f in feats:
            attrs = dict(zip(out["fields"], f.attributes(), strict=True))
            out["names"].append(attrs.get("name"))
            out["ids"].append(attrs.get("id") or attrs.get("grid_code"))
    sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
    # PyQGIS 3.22 may crash while Python tears down its objects after exitQgis(); the
    # answer is written, so leave at once
    os._exit(0)


if __name__ == "__main__":
    main()
