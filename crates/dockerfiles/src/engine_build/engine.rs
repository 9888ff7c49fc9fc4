//! The Docker Engine API client (bollard): inspect, build, tag and push.

use anyhow::Context;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptions, CreateImageOptions, PushImageOptions, TagImageOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};

/// `DOCKER_HOST`'s default.
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

/// What the engine knows about a local image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalImage {
    /// The image ID (`sha256:` of its config).
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

/// One build, as sent to `POST /build`.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The reference to tag the result with (`registry/name:tag`).
    pub tag: String,
    /// The context tar.
    pub context: Vec<u8>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `none` or `host`.
    pub network: String,
    /// `os/arch` to build for (another architecture's RUN steps run through
    /// the host's qemu-user binfmt_misc handler); `None` for the engine's.
    pub platform: Option<String>,
}

/// Registry credentials for pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// `CORRAL_REGISTRY_USER` and `CORRAL_REGISTRY_PASSWORD`, when the user is set.
    pub fn from_env() -> Option<Self> {
        let username = std::env::var("CORRAL_REGISTRY_USER").ok()?;
        let password = std::env::var("CORRAL_REGISTRY_PASSWORD").unwrap_or_default();
        Some(Self { username, password })
    }
}

/// A connection to one Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    url: String,
}

impl DockerEngine {
    /// Connects to `url` (`unix://…`, `tcp://…` or `http://…`) and agrees on
    /// the API version (Debian's Docker 20.10 speaks 1.41).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let docker = Docker::connect_with_host(url)
            .with_context(|| format!("connecting to the engine at {url}"))?
            .negotiate_version()
            .await
            .with_context(|| format!("reaching the engine at {url}"))?;
        Ok(Self {
            docker,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The engine's architecture in OCI/Go terms (`amd64`, `arm64`): what
    /// BuildKit passes as TARGETARCH for a native build.
    pub async fn arch(&self) -> anyhow::Result<String> {
        let v = self
            .docker
            .version()
            .await
            .with_context(|| format!("reading the version of the engine at {}", self.url))?;
        v.arch
            .filter(|a| !a.is_empty())
            .with_context(|| format!("the engine at {} does not say its architecture", self.url))
    }

    /// The local image `reference`, or None when the engine has none.
    pub async fn inspect(&self, reference: &str) -> anyhow::Result<Option<LocalImage>> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(LocalImage {
                id: i.id.unwrap_or_default(),
                labels: i
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting {reference} in the engine")),
        }
    }

    /// Builds with the classic builder, calling `log` with every output
    /// line; returns the new image's ID.
    pub async fn build(
        &self,
        req: BuildRequest,
        mut log: impl FnMut(&str),
    ) -> anyhow::Result<String> {
        let options = BuildImageOptions {
            t: Some(req.tag.clone()),
            rm: true,
            forcerm: true,
            buildargs: Some(to_hash_map(&req.build_args)),
            labels: Some(to_hash_map(&req.labels)),
            networkmode: Some(req.network.clone()),
            platform: req.platform.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(req.context.into())));
        let mut id = None;
        while let Some(item) = stream.next().await {
            let info = item.with_context(|| format!("building {}", req.tag))?;
            if let Some(s) = &info.stream {
                s.lines()
                    .filter(|l| !l.trim().is_empty())
                    .for_each(&mut log);
            }
            if let Some(s) = &info.status {
                log(s);
            }
            if let Some(i) = info.aux.and_then(|a| a.id) {
                id = Some(i);
            }
        }
        match id {
            Some(id) => Ok(id),
            None => Ok(self
                .inspect(&req.tag)
                .await?
                .with_context(|| format!("the engine has no {} after building it", req.tag))?
                .id),
        }
    }

    /// Pulls `reference` for `platform` (`os/arch`). The engine keeps one
    /// image per name, and the classic builder takes a local FROM image
    /// whatever its platform, so a build for a platform pulls its bases
    /// for that platform first.
    pub async fn pull(&self, reference: &str, platform: &str) -> anyhow::Result<()> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_string()),
            platform: platform.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.with_context(|| format!("pulling {reference} for {platform}"))?;
        }
        Ok(())
    }

    /// Tags `source` as `repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> anyhow::Result<()> {
        self.docker
            .tag_image(
                source,
                Some(TagImageOptions {
                    repo: Some(repo.to_string()),
                    tag: Some(tag.to_string()),
                }),
            )
            .await
            .with_context(|| format!("tagging {source} as {repo}:{tag}"))
    }

    /// Pushes `repo:tag`, calling `log` with the engine's status lines.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&Credentials>,
        mut log: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        let creds = credentials.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            serveraddress: repo.split('/').next().map(str::to_string),
            ..Default::default()
        });
        let mut stream = self.docker.push_image(
            repo,
            Some(PushImageOptions {
                tag: Some(tag.to_string()),
                platform: None,
            }),
            creds,
        );
        while let Some(item) = stream.next().await {
            let info = item.with_context(|| format!("pushing {repo}:{tag}"))?;
            if let Some(s) = info.status {
                // per-layer progress is noise in a log
                if info.progress_detail.is_none_or(|p| p.current.is_none()) {
                    log(&s);
                }
            }
        }
        Ok(())
    }
}

fn to_hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
