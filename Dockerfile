# gridmap HTTP service: slim, non-root. The Python wheels of shapely, pyproj and pyogrio
# carry GEOS, PROJ and GDAL, so no system GIS libraries are needed.
#
#   docker build -t gridmap .
#   docker run -p 8000:8000 -v gridmap-data:/data gridmap            # SQLite in /data
#   docker compose up                                                # with PostGIS (compose.yaml)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gridmap ./gridmap
COPY data ./data
RUN pip install --no-cache-dir --prefix=/install ".[postgis]"

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 gridmap && mkdir /data && chown gridmap /data
USER gridmap
WORKDIR /data
ENV GRIDMAP_DATABASE_URL=sqlite:////data/gridmap.db \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# migrate the store, then serve; behind a TLS-terminating reverse proxy in production
CMD ["sh", "-c", "gridmap db upgrade && exec gridmap serve --host 0.0.0.0 --port 8000"]
