# The image of one modelstage stage, as SageMaker runs it: `docker run IMAGE train`
# and `docker run IMAGE serve`. ci/docker-build.sh builds one per stage; see
# docker/README.md for building by hand.
#
# The build context is a small folder holding exactly two files: the host-built
# `modelstage` binary and the stage library named by STAGE (the script lays it
# out). BASE defaults to the local base image that docker/base/build-base.sh
# imports, so no registry is needed; where one is reachable,
# --build-arg BASE=gcr.io/distroless/cc-debian12 works as well. Build with the
# classic builder (DOCKER_BUILDKIT=0): BuildKit may try a registry even for a
# local-only FROM image.
ARG BASE=modelstage/base:latest
FROM ${BASE}

# The stage library's file name in the build context, e.g. libfeaturizer.so.
ARG STAGE
# Read from `modelstage inspect` by ci/docker-build.sh and kept as labels.
ARG STAGE_NAME=unknown
ARG STAGE_VERSION=unknown
ARG ABI_VERSION=unknown
# The cargo profile the binaries come from (debug images are for tests).
ARG PROFILE=release

COPY modelstage /usr/local/bin/modelstage
# One fixed path in every image, so MODELSTAGE_STAGE is the same everywhere.
COPY ${STAGE} /opt/modelstage/stage.so
ENV MODELSTAGE_STAGE=/opt/modelstage/stage.so

# The label says the server honours SAGEMAKER_BIND_TO_PORT, which serial
# inference pipelines need (docs/contract.md (Serial pipelines)).
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.modelstage.stage.name="${STAGE_NAME}" \
      com.modelstage.stage.version="${STAGE_VERSION}" \
      com.modelstage.stage.library="${STAGE}" \
      com.modelstage.abi.version="${ABI_VERSION}" \
      com.modelstage.profile="${PROFILE}"

EXPOSE 8080
# Exec form: `train` and `serve` arrive as arguments, and modelstage is PID 1,
# so the SIGTERM of `docker stop` (and of StopTrainingJob) reaches it directly.
ENTRYPOINT ["/usr/local/bin/modelstage"]
