# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_corral_global_optspecs
    string join \n v/verbose h/help V/version
end

function __fish_corral_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_corral_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_corral_using_subcommand
    set -l cmd (__fish_corral_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c corral -n "__fish_corral_needs_command" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_needs_command" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_needs_command" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_needs_command" -f -a "tree" -d 'Package recipes to root filesystems'
complete -c corral -n "__fish_corral_needs_command" -f -a "image" -d 'OCI base images: build and inspect'
complete -c corral -n "__fish_corral_needs_command" -f -a "dockerfiles" -d 'The curated Dockerfile library: lint, dependency graph, rebuild plans'
complete -c corral -n "__fish_corral_needs_command" -f -a "compose" -d 'Atomic Host composes: signed OSTree commits on a release cadence'
complete -c corral -n "__fish_corral_needs_command" -f -a "disk" -d 'Bootable Atomic Host disk images (qcow2, raw, raw.xz) of OSTree commits: GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64'
complete -c corral -n "__fish_corral_needs_command" -f -a "host" -d 'Atomic hosts: status, signed upgrades, rollbacks, boot health checks (`--sysroot DIR` works on a sysroot in a directory)'
complete -c corral -n "__fish_corral_needs_command" -f -a "test" -d 'Run images\' tests in SELinux-labelled containers (own MCS categories per run); text, JSON and JUnit reports. Exit 0: all passed; 1: some failed; 2: could not run'
complete -c corral -n "__fish_corral_needs_command" -f -a "key" -d 'Signing keys: generate cosign or GPG keys'
complete -c corral -n "__fish_corral_needs_command" -f -a "sign" -d 'Sign images (cosign format, or GPG simple signing with a lookaside)'
complete -c corral -n "__fish_corral_needs_command" -f -a "verify" -d 'Verify an image\'s signatures'
complete -c corral -n "__fish_corral_needs_command" -f -a "policy" -d 'Write the policy.json and registries.d files clients need to require corral\'s signatures'
complete -c corral -n "__fish_corral_needs_command" -f -a "mirror" -d 'The registry mirror: serve, garbage-collect and check its storage'
complete -c corral -n "__fish_corral_needs_command" -f -a "portal" -d 'The community portal: submit templates for review'
complete -c corral -n "__fish_corral_needs_command" -f -a "release" -d 'The whole release, resumably: base images, the curated library, Atomic Host streams, signatures and a report. Exit 0: released; 1: an image failed its tests (it was not published); 2: could not run'
complete -c corral -n "__fish_corral_needs_command" -f -a "generate" -d 'Write man pages or shell completions generated from this command tree'
complete -c corral -n "__fish_corral_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -f -a "build" -d 'Install a recipe into a new root filesystem with dnf and rpm'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -f -a "plan" -d 'Show what a build would do: the dnf configuration, the rpm macros and the command line. Reads no repository'
complete -c corral -n "__fish_corral_using_subcommand tree; and not __fish_seen_subcommand_from build plan help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -l rootfs -d 'Where the tree goes; must not exist, or be empty' -r -F
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -l arch -d 'Build for this architecture instead of the recipe\'s `arch` (x86_64, aarch64, ...): dnf --forcearch, the scriptlets run through the host\'s qemu-user binfmt_misc handler' -r
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -l source-date-epoch -d 'rpm install times and the clamp for file times (reproducible trees)' -r
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -l sandbox -d 'Run dnf and the packages\' scriptlets in a bubblewrap sandbox, as the community portal builds recipes: no network, none of the host but /usr, the tree and the recipe\'s repositories (read-only). The repositories and keys must be local (file:// or paths); needs bwrap'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -l json -d 'Print the report as JSON'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from build" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from plan" -l arch -d 'Plan for this architecture instead of the recipe\'s `arch`' -r
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from plan" -l json -d 'Print the plan as JSON'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from plan" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "build" -d 'Install a recipe into a new root filesystem with dnf and rpm'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Show what a build would do: the dnf configuration, the rpm macros and the command line. Reads no repository'
complete -c corral -n "__fish_corral_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -f -a "build" -d 'Build an OCI image layout from a recipe or a ready tree'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -f -a "inspect" -d 'Show the manifest, config and layers of an image in any transport skopeo knows (oci:, docker://, docker-daemon:, oci-archive:)'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -f -a "outdated" -d 'Which released base images need a respin: each one\'s SBOM against its repositories\' current packages and security advisories. Exit 0: all up to date; 1: some need a respin; 2: could not run'
complete -c corral -n "__fish_corral_using_subcommand image; and not __fish_seen_subcommand_from build inspect outdated help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l rootfs -d 'A ready tree to pack instead of installing the recipe: a directory (never modified) or a tar archive' -r -F
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -s o -l output -d 'Output, as oci:DIR:TAG. DIR must not exist' -r
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l platform -d 'Build the recipe once per platform (OS/ARCH, comma-separated, e.g. linux/amd64,linux/arm64) and tag an image index of them: one manifest and one SBOM per platform. Another architecture\'s tree is installed with dnf --forcearch; its scriptlets run through the host\'s qemu-user binfmt_misc handler' -r
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l compression -d 'Layer compression' -r -f -a "gzip\t''
zstd\t''"
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l source-date-epoch -d 'The image\'s creation time and the clamp for file times' -r
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l label -d 'Label KEY=VALUE on the image config (repeatable; adds to the recipe\'s)' -r
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l threads -d 'Compression threads (0: all cores)' -r
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -l json -d 'Print the result as JSON'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from build" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from inspect" -l tls-verify -d 'Require HTTPS and verify certificates for docker:// registries (as skopeo\'s --tls-verify; false also allows plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from inspect" -l json -d 'Print the result as JSON'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from inspect" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from inspect" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from outdated" -l config -d 'The release configuration that lists the images and their recipes' -r -F
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from outdated" -l json -d 'Print the result as JSON'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from outdated" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from outdated" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from outdated" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from help" -f -a "build" -d 'Build an OCI image layout from a recipe or a ready tree'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Show the manifest, config and layers of an image in any transport skopeo knows (oci:, docker://, docker-daemon:, oci-archive:)'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from help" -f -a "outdated" -d 'Which released base images need a respin: each one\'s SBOM against its repositories\' current packages and security advisories. Exit 0: all up to date; 1: some need a respin; 2: could not run'
complete -c corral -n "__fish_corral_using_subcommand image; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -f -a "lint" -d 'Check Dockerfiles against the lint rules (docs/rules/); exits 1 on an error-severity finding'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -f -a "graph" -d 'Show the dependency graph of the library images'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -f -a "plan" -d 'List the library images to rebuild, bases first'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -f -a "build" -d 'Build library images through the Docker Engine API, bases first; exits 1 when any failed'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and not __fish_seen_subcommand_from lint graph plan build help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from lint" -l format -r -f -a "text\t'`path:line:col: severity[ID] message`'
json\t''
sarif\t'SARIF 2.1.0'"
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from lint" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from lint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from lint" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from graph" -l library -d 'The library folder' -r -F
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from graph" -l format -r -f -a "text\t''
json\t''
dot\t'Graphviz'"
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from graph" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from graph" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from graph" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l library -d 'The library folder' -r -F
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l since -d 'Rebuild images with files changed since this git revision, and their dependents' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l base-changed -d 'Rebuild the dependents of a library image or of an external base image reference' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l state -d 'JSON file of built images (context hash, digest, base digests); without a mode flag, images whose context or bases differ from it are rebuilt' -r -F
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l engine -d 'Read what was built from the Docker Engine at URL (the images\' labels and IDs, and the external bases\' IDs) instead of --state' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l registry-map -d 'Take external FROM images named under FROM from TO (as `build` does)' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l format -r -f -a "text\t''
json\t''"
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l all -d 'Rebuild every image'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -l mark-built -d 'Record the planned images as built in --state (for use after a build)'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l library -d 'The library folder' -r -F
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l engine -d 'The Docker Engine API endpoint (unix://, tcp:// or http://)' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l push -d 'Push every tag as REGISTRY/<name>:<tag> (REGISTRY may have a path); credentials from CORRAL_REGISTRY_USER and CORRAL_REGISTRY_PASSWORD' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l jobs -d 'Images built at the same time' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l registry-map -d 'Take external FROM images named under FROM from TO, e.g. quay.io/corral=127.0.0.1:5000/corral (repeatable)' -r
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l network -d 'The network of the build containers' -r -f -a "none\t''
host\t''"
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l format -d 'The summary\'s format (build output goes to stderr)' -r -f -a "text\t''
json\t''"
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l all-platforms -d 'Build each image for every architecture its image.toml lists (other architectures emulated through qemu-user binfmt_misc), one at a time, and push one image index per tag (needs --push)'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -l changed -d 'Build only the images `plan --engine` lists: changed, never built, or on a changed base'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from build" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from help" -f -a "lint" -d 'Check Dockerfiles against the lint rules (docs/rules/); exits 1 on an error-severity finding'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from help" -f -a "graph" -d 'Show the dependency graph of the library images'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from help" -f -a "plan" -d 'List the library images to rebuild, bases first'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from help" -f -a "build" -d 'Build library images through the Docker Engine API, bases first; exits 1 when any failed'
complete -c corral -n "__fish_corral_using_subcommand dockerfiles; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "run" -d 'Compose streams into signed commits with static deltas'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "plan" -d 'Each stream\'s head, next release day, and whether it is due'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "diff" -d 'Packages added, removed and changed between two commits of a ref'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "lock" -d 'Resolve a stream\'s packages and write them as its lockfile'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "export" -d 'Export a commit as an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "import" -d 'Import a commit from an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand compose; and not __fish_seen_subcommand_from run plan diff lock export import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l repo -d 'The archive repository (created when missing)' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l rootfs -d 'Commit this ready tree (a directory or tar archive, never modified) instead of building the stream\'s recipe. One stream only' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l reason -d 'Why this out-of-band compose is made (recorded on the commit)' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l gpg-key -d 'Sign with this key instead of the stream\'s sign.gpg-key' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l gpg-homedir -d 'GnuPG home instead of the stream\'s sign.gpg-homedir' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l lockfile -d 'Install exactly the packages of this lockfile (`compose lock`) instead of the stream\'s `lockfile`' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l zlib-level -d 'Set the repository\'s zlib level for content objects (1 fastest, 9 smallest; libostree\'s default 6). Kept in the repository config' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l export -d 'Also publish each new commit as an OS image (the ostree container format, as `compose export` writes it), tagged with its version: docker://HOST/REPO. Commits that were not made (unchanged, not due) are not published' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l export-max-layers -d 'At most this many layers in each --export image' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l export-tls-verify -d 'Verify the --export registry\'s TLS certificate (false also allows plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l force -d 'Commit even when the input is the same as the head\'s'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l no-deltas -d 'Generate no static deltas'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l due -d 'Compose only the streams whose release day has come'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l wait -d 'Wait for another compose on the repository instead of failing'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from plan" -l repo -d 'The archive repository' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from plan" -l json
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from plan" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from diff" -l repo -d 'The archive repository' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from diff" -l json
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from lock" -s o -l output -d 'Where to write the lockfile (JSON)' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from lock" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from lock" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from lock" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -l repo -d 'The archive repository' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -s o -l output -d 'Where to: oci:DIR[:TAG] (a new layout; the tag defaults to the commit\'s version) or docker://HOST/REPO[:TAG]' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -l max-layers -d 'At most this many layers, one per group of packages plus the commit layer; 1 puts everything in one layer' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -l arch -d 'The image\'s architecture (GOARCH spelling)' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -l tls-verify -d 'Verify the registry\'s TLS certificate (as skopeo\'s --dest-tls-verify; false also allows plain HTTP)' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -l repo -d 'The repository to import into (it must exist)' -r -F
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -l ref -d 'Point this ref at the imported commit' -r
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "run" -d 'Compose streams into signed commits with static deltas'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Each stream\'s head, next release day, and whether it is due'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Packages added, removed and changed between two commits of a ref'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "lock" -d 'Resolve a stream\'s packages and write them as its lockfile'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export a commit as an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import a commit from an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand compose; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand disk; and not __fish_seen_subcommand_from build help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand disk; and not __fish_seen_subcommand_from build help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand disk; and not __fish_seen_subcommand_from build help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand disk; and not __fish_seen_subcommand_from build help" -f -a "build" -d 'Build a bootable disk image (GPT; GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64) of an OSTree commit, deployed with libostree'
complete -c corral -n "__fish_corral_using_subcommand disk; and not __fish_seen_subcommand_from build help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l commit -d 'The commit to deploy (a checksum or a prefix of one)' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l ref -d 'The ref to deploy (with --commit: the ref the host follows)' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l repo -d 'The local OSTree repository holding the commit' -r -F
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l image -d 'Instead of --repo and --commit: an OS image, oci:DIR[:TAG] or docker://HOST/REPO:TAG (the ostree container format, as `corral compose export` and `corral release` publish it). Its commit is imported into a temporary repository and deployed under the ref of --ref or the stream file' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l tls-verify -d 'With --image docker://…: verify the registry\'s TLS certificate; false talks plain HTTP (a local mirror)' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -s o -l output -d 'The image to write; IMAGE.sha256 (and IMAGE.asc) are written beside' -r -F
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l format -r -f -a "qcow2\t''
raw\t''
raw.xz\t''"
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l size -d 'Virtual size of the disk (K, M, G, T are powers of 1024) [default: the stream\'s, else 10G]' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l bootloader -r -f -a "grub\t'GRUB2 for BIOS and UEFI, its menu written from the BLS entries'
systemd-boot\t'systemd-boot for UEFI (not supported yet)'"
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l os -d 'The stateroot (osname) of the deployment' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l remote-name -d 'The remote the deployment\'s origin names [default: the stream\'s, else corral]' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l remote-url -d 'Where the host pulls updates from (the mirror\'s /ostree URL)' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l remote-gpg-key -d 'The public key(s) the remote\'s commits and summary must be signed by' -r -F
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l karg -d 'A kernel argument (repeatable), after the stream\'s kargs' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l gpg-key -d 'Sign the image: a detached armored signature IMAGE.asc' -r
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l gpg-homedir -d 'GnuPG home for --gpg-key [default: $GNUPGHOME or ~/.gnupg]' -r -F
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -l json -d 'Print a JSON summary on stdout'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from build" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "build" -d 'Build a bootable disk image (GPT; GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64) of an OSTree commit, deployed with libostree'
complete -c corral -n "__fish_corral_using_subcommand disk; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "status" -d 'The deployments: booted, pending and rollback, with version, commit, date, origin, signature, pin, health and the package changes'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "upgrade" -d 'Fetch, verify and deploy the newest commit of the origin ref'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "deploy" -d 'Deploy a version or commit from the origin ref\'s history'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "rebase" -d 'Deploy the OS from a container image and make it the origin: ostree-remote-registry:REMOTE:HOST/REPO:TAG (the commit verified with the remote\'s GPG keys), ostree-image-signed:docker://HOST/REPO:TAG (the container signature verified with [images] in host.toml) or ostree-unverified-registry:HOST/REPO:TAG (with --insecure-unverified)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "rollback" -d 'Make the previous deployment the default; again swaps back'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "pin" -d 'Keep a deployment (by index) whatever the retention count says'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "unpin" -d 'Let retention drop a pinned deployment again'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "cleanup" -d 'Remove the pending and/or rollback deployments, unreferenced boot files and objects'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "remote" -d 'Remotes the updates come from'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "check" -d 'The boot health check: run /etc/corral/health.d, count failed boots, roll back after too many'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "auto" -d 'Deploy the newest commit once this host\'s rollout delay has passed, then reboot as the [updates] strategy allows (for the timer)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "steady" -d 'After a healthy boot, give the FleetLock reboot slot back'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "updates" -d 'The [updates] strategy, window, FleetLock id and what waits for a reboot'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "boot-complete" -d 'Mark this boot complete for GRUB\'s boot counter; when GRUB fell back to the previous deployment, make that the default (run by corral-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "grub-sync" -d 'Rewrite corral\'s GRUB menu from the boot entries and count the boots of a deployment finalized at shutdown (run after ostree-finalize-staged.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "finalize-check" -d 'Find out whether the deployment staged before the last reboot was finalized at shutdown; record a failure and deny its commit (run early in the boot, before ostree-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and not __fish_seen_subcommand_from status upgrade deploy rebase rollback pin unpin cleanup remote check auto steady updates boot-complete grub-sync finalize-check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l keep -d 'Deployments to keep (default: keep in /etc/corral/host.toml, 3)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l stall-timeout -d 'Stop a transfer after this many seconds without progress (default: stall-timeout in /etc/corral/host.toml, 120)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l creds -d 'Registry credentials' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l tls-verify -d '`--tls-verify=false` is `--plain-http`, as skopeo users write it' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l check -d 'Only say whether there is an update: exit 0 if so, 1 if not'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l allow-downgrade -d 'Deploy the origin\'s newest commit even when it is older than the deployed one'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l download-only -d 'Fetch and verify only; a later upgrade deploys without fetching'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l no-static-deltas -d 'Fetch objects one by one even when a static delta is published'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l no-stage -d 'On a booted host, write the deployment now instead of staging it (staged, /etc is merged again at shutdown and later edits are kept)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l plain-http -d 'Talk plain HTTP to the registry (a local mirror); remembered in the deployment\'s origin for its upgrades'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from upgrade" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l origin -d 'Deploy from this REMOTE:REF (and make it the origin) instead of the current deployment\'s origin; needed for the first deployment' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l keep -d 'Deployments to keep (default: keep in /etc/corral/host.toml, 3)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l stall-timeout -d 'Stop a transfer after this many seconds without progress (default: stall-timeout in /etc/corral/host.toml, 120)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l download-only -d 'Fetch and verify only; a later upgrade deploys without fetching'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l no-static-deltas -d 'Fetch objects one by one even when a static delta is published'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l no-stage -d 'On a booted host, write the deployment now instead of staging it (staged, /etc is merged again at shutdown and later edits are kept)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from deploy" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l creds -d 'Registry credentials' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l tls-verify -d '`--tls-verify=false` is `--plain-http`, as skopeo users write it' -r -f -a "true\t''
false\t''"
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l keep -d 'Deployments to keep (default: keep in /etc/corral/host.toml, 3)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l stall-timeout -d 'Stop a transfer after this many seconds without progress (default: stall-timeout in /etc/corral/host.toml, 120)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l insecure-unverified -d 'Accept an ostree-unverified-registry: image (nothing is verified)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l plain-http -d 'Talk plain HTTP to the registry (a local mirror); remembered in the deployment\'s origin for its upgrades'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l no-stage -d 'On a booted host, write the deployment now instead of staging it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l json -d 'Print the outcome as JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rebase" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from rollback" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from pin" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from unpin" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -l pending -d 'Remove the pending deployment (not booted yet)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -l rollback -d 'Remove the rollback deployments'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from cleanup" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -f -a "add" -d 'Add a remote that verifies commits and the summary with GPG'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -f -a "list" -d 'The configured remotes'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -f -a "delete" -d 'Delete a remote and its keyring; refused while a deployment updates from it, unless --force'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -f -a "set-url" -d 'Point a remote at another URL, keeping its keys and options'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from remote" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l max-failed-boots -d 'Failed boots before rolling back (default: max-failed-boots in /etc/corral/host.toml, 3)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l script-timeout -d 'Seconds a script may run before it counts as failed' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l reboot -d 'Reboot after a failed check (to count the next boot), and after a rollback (to boot the previous deployment)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -l stall-timeout -d 'Stop a transfer after this many seconds without progress (default: stall-timeout in /etc/corral/host.toml, 120)' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from auto" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from steady" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from updates" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from boot-complete" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from grub-sync" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -l sysroot -d 'The sysroot to work on: `/` on a host, or a directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -l os -d 'The stateroot (OS name); the only or the booted one by default' -r
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -l json -d 'Print JSON'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -l no-wait -d 'Fail at once when another corral host command holds the sysroot, instead of waiting for it'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from finalize-check" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "status" -d 'The deployments: booted, pending and rollback, with version, commit, date, origin, signature, pin, health and the package changes'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "upgrade" -d 'Fetch, verify and deploy the newest commit of the origin ref'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "deploy" -d 'Deploy a version or commit from the origin ref\'s history'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "rebase" -d 'Deploy the OS from a container image and make it the origin: ostree-remote-registry:REMOTE:HOST/REPO:TAG (the commit verified with the remote\'s GPG keys), ostree-image-signed:docker://HOST/REPO:TAG (the container signature verified with [images] in host.toml) or ostree-unverified-registry:HOST/REPO:TAG (with --insecure-unverified)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "rollback" -d 'Make the previous deployment the default; again swaps back'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "pin" -d 'Keep a deployment (by index) whatever the retention count says'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "unpin" -d 'Let retention drop a pinned deployment again'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "cleanup" -d 'Remove the pending and/or rollback deployments, unreferenced boot files and objects'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "remote" -d 'Remotes the updates come from'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "check" -d 'The boot health check: run /etc/corral/health.d, count failed boots, roll back after too many'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "auto" -d 'Deploy the newest commit once this host\'s rollout delay has passed, then reboot as the [updates] strategy allows (for the timer)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "steady" -d 'After a healthy boot, give the FleetLock reboot slot back'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "updates" -d 'The [updates] strategy, window, FleetLock id and what waits for a reboot'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "boot-complete" -d 'Mark this boot complete for GRUB\'s boot counter; when GRUB fell back to the previous deployment, make that the default (run by corral-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "grub-sync" -d 'Rewrite corral\'s GRUB menu from the boot entries and count the boots of a deployment finalized at shutdown (run after ostree-finalize-staged.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "finalize-check" -d 'Find out whether the deployment staged before the last reboot was finalized at shutdown; record a failure and deny its commit (run early in the boot, before ostree-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand test" -l library -d 'The Dockerfile library' -r -F
complete -c corral -n "__fish_corral_using_subcommand test" -l spec -d 'The image.toml whose tests run against the IMAGE reference' -r -F
complete -c corral -n "__fish_corral_using_subcommand test" -l junit -d 'Write a JUnit XML report to FILE' -r -F
complete -c corral -n "__fish_corral_using_subcommand test" -l engine -d 'The Docker Engine' -r
complete -c corral -n "__fish_corral_using_subcommand test" -l label-type -d 'The SELinux process type of the test containers' -r
complete -c corral -n "__fish_corral_using_subcommand test" -l mcs-dir -d 'Where the MCS allocations shared by corral processes are kept' -r -F
complete -c corral -n "__fish_corral_using_subcommand test" -l mcs-range -d 'The MCS categories to allocate from, LOW-HIGH' -r
complete -c corral -n "__fish_corral_using_subcommand test" -l scratch -d 'Where host directories for mounts are made' -r -F
complete -c corral -n "__fish_corral_using_subcommand test" -l json -d 'Print the report as JSON on stdout'
complete -c corral -n "__fish_corral_using_subcommand test" -l keep -d 'Keep the test containers and their mount directories (for docker inspect)'
complete -c corral -n "__fish_corral_using_subcommand test" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand test" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand test" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "generate" -d 'Generate a signing key: a cosign key pair (cosign.key, cosign.pub) or a GPG key whose public keyring is exported to OUT/corral-signing.gpg'
complete -c corral -n "__fish_corral_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -l type -r -f -a "cosign\t''
gpg\t''"
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -l out -d 'Directory for the key files (created)' -r -F
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -l gpg-homedir -d 'GnuPG home for --type gpg (default: gpg\'s, i.e. $GNUPGHOME or ~/.gnupg)' -r -F
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -l gpg-uid -d 'User ID of a new GPG key' -r
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from generate" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Generate a signing key: a cosign key pair (cosign.key, cosign.pub) or a GPG key whose public keyring is exported to OUT/corral-signing.gpg'
complete -c corral -n "__fish_corral_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand sign; and not __fish_seen_subcommand_from image help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand sign; and not __fish_seen_subcommand_from image help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand sign; and not __fish_seen_subcommand_from image help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand sign; and not __fish_seen_subcommand_from image help" -f -a "image" -d 'Sign an image in a registry: cosign format with --key, GPG simple signing (uploaded to the lookaside) with --gpg-key'
complete -c corral -n "__fish_corral_using_subcommand sign; and not __fish_seen_subcommand_from image help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l key -d 'cosign private key (password from CORRAL_KEY_PASSWORD or a prompt)' -r -F
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l gpg-key -d 'GPG key ID or fingerprint (GPG simple signing)' -r
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l gpg-homedir -r -F
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l creds -d 'Registry credentials (push needs them)' -r
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l lookaside -d 'Lookaside base URL for GPG signatures (default: http[s]://REGISTRY/sigstore, corral mirror\'s)' -r
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l plain-http -d 'Talk plain HTTP to the registry and lookaside'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -l json
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from image" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from help" -f -a "image" -d 'Sign an image in a registry: cosign format with --key, GPG simple signing (uploaded to the lookaside) with --gpg-key'
complete -c corral -n "__fish_corral_using_subcommand sign; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand verify; and not __fish_seen_subcommand_from image help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand verify; and not __fish_seen_subcommand_from image help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand verify; and not __fish_seen_subcommand_from image help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand verify; and not __fish_seen_subcommand_from image help" -f -a "image" -d 'Verify an image\'s signature (exit 1 when it is not validly signed)'
complete -c corral -n "__fish_corral_using_subcommand verify; and not __fish_seen_subcommand_from image help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l key -d 'cosign public key' -r -F
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l gpg-keyring -d 'GPG public keyring (gpg --export output)' -r -F
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l policy -d 'Apply the signedIdentity this containers policy.json gives the image (default: the one `corral policy` writes: matchRepository for cosign, matchRepoDigestOrExact for GPG)' -r -F
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l creds -d 'Registry credentials (push needs them)' -r
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l lookaside -d 'Lookaside base URL for GPG signatures (default: http[s]://REGISTRY/sigstore, corral mirror\'s)' -r
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l plain-http -d 'Talk plain HTTP to the registry and lookaside'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -l json
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from image" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from help" -f -a "image" -d 'Verify an image\'s signature (exit 1 when it is not validly signed)'
complete -c corral -n "__fish_corral_using_subcommand verify; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand policy" -l mirror -d 'The mirror, http[s]://HOST[:PORT]' -r
complete -c corral -n "__fish_corral_using_subcommand policy" -l key -d 'cosign public key (sigstoreSigned, use-sigstore-attachments)' -r -F
complete -c corral -n "__fish_corral_using_subcommand policy" -l gpg-keyring -d 'GPG public keyring (signedBy GPGKeys, lookaside)' -r -F
complete -c corral -n "__fish_corral_using_subcommand policy" -l out -d 'Directory for a new policy.json (rejecting all but local transports and the mirror\'s signed images) and registries.d/' -r -F
complete -c corral -n "__fish_corral_using_subcommand policy" -l merge -d 'Add the mirror\'s entry to this existing policy.json in place (e.g. /etc/containers/policy.json), keeping everything else; the registries.d file goes to registries.d/ beside it' -r -F
complete -c corral -n "__fish_corral_using_subcommand policy" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand policy" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand policy" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -f -a "serve" -d 'Serve the registry (distribution-spec v1.1) and pull-through mirror'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -f -a "gc" -d 'Delete manifests and blobs no tag reaches'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -f -a "fsck" -d 'Check blobs, tags, manifests, references and links; exit 1 on damage'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -f -a "publish" -d 'Upload an OSTree repository or disk images into the replicas\' bucket'
complete -c corral -n "__fish_corral_using_subcommand mirror; and not __fish_seen_subcommand_from serve gc fsck publish help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l config -d 'TOML configuration file; flags override it' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l listen -d 'Address to listen on [default: 127.0.0.1:5000]' -r
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l storage -d 'Storage directory' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l upstream -d 'Mirror repositories under PREFIX/ from URL (repeatable)' -r
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l htpasswd -d 'htpasswd file with bcrypt entries (htpasswd -B)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l ostree-repo -d 'Serve this OSTree archive repository read-only under /ostree/' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l disk-images -d 'Serve the disk images in this directory read-only under /disk-images/ and list them in the catalog with checksum and signature state' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l trust-cosign-key -d 'Trust this cosign public key: the catalog shows the tags it signed as verified (repeatable)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l trust-gpg-keyring -d 'Trust the keys of this GPG keyring (gpg --export output; repeatable)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -l portal -d 'Serve the community portal under /community, configured by the [portal] table of this TOML file (docs/portal.md)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from serve" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -l config -d 'TOML configuration file (for its storage and gc settings)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -l storage -d 'Storage directory (overrides the config)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -l grace-period -d 'Keep unreferenced content younger than this many seconds [default: from config, 3600]' -r
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -l json -d 'Machine-readable output'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -l dry-run -d 'List what would be deleted without deleting'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from gc" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -l config -d 'TOML configuration file (for its storage and gc settings)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -l storage -d 'Storage directory (overrides the config)' -r -F
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -l idle-threshold -d 'Upload sessions and temp files idle longer than this many seconds are stale [default: the gc grace period, 3600]' -r
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -l json -d 'Machine-readable output'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -l repair -d 'Remove garbage (idle temp files and upload sessions, broken sessions, unrecoverable link files, tags pointing nowhere) and list each removal; never removes a blob or anything still referenced'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from fsck" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -f -a "ostree" -d 'Upload an OSTree archive repository to the bucket under [s3] ostree_prefix'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -f -a "disk-images" -d 'Upload a directory of disk images (with .sha256, .asc) under [s3] disk_images_prefix'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from publish" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "serve" -d 'Serve the registry (distribution-spec v1.1) and pull-through mirror'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "gc" -d 'Delete manifests and blobs no tag reaches'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "fsck" -d 'Check blobs, tags, manifests, references and links; exit 1 on damage'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Upload an OSTree repository or disk images into the replicas\' bucket'
complete -c corral -n "__fish_corral_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand portal; and not __fish_seen_subcommand_from submit help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand portal; and not __fish_seen_subcommand_from submit help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand portal; and not __fish_seen_subcommand_from submit help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand portal; and not __fish_seen_subcommand_from submit help" -f -a "submit" -d 'Submit a template folder to a portal: packed as a tar.gz, uploaded through the portal\'s pages after signing in; prints the template\'s page. The same name again is the next revision'
complete -c corral -n "__fish_corral_using_subcommand portal; and not __fish_seen_subcommand_from submit help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -l to -d 'The portal: the mirror\'s URL with /community' -r
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -l creds -d 'The account to sign in as' -r
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -l name -d 'The template\'s name (default: the folder\'s name)' -r
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -l kind -d 'dockerfile-folder or tree-recipe' -r
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -l json -d 'Print the result as JSON'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from submit" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from help" -f -a "submit" -d 'Submit a template folder to a portal: packed as a tar.gz, uploaded through the portal\'s pages after signing in; prints the template\'s page. The same name again is the next revision'
complete -c corral -n "__fish_corral_using_subcommand portal; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand release" -l config -d 'The release configuration' -r -F
complete -c corral -n "__fish_corral_using_subcommand release" -l only -d 'Run only these steps' -r -f -a "base\t'Base images from tree recipes'
library\t'The curated Dockerfile library'
host\t'Atomic Host composes'
report\t'The release report'"
complete -c corral -n "__fish_corral_using_subcommand release" -l out-of-band -d 'Compose every stream now, whatever its cadence, recording REASON' -r
complete -c corral -n "__fish_corral_using_subcommand release" -l dry-run -d 'Print the plan (what each step would do and why) and stop'
complete -c corral -n "__fish_corral_using_subcommand release" -l json -d 'Print the plan (with --dry-run) or the report as JSON'
complete -c corral -n "__fish_corral_using_subcommand release" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand release" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c corral -n "__fish_corral_using_subcommand release" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "man" -d 'Man pages for corral and every subcommand, into DIR'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "completions" -d 'Completion scripts for bash, zsh and fish, into DIR'
complete -c corral -n "__fish_corral_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from man" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from completions" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug); RUST_LOG overrides'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages for corral and every subcommand, into DIR'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Completion scripts for bash, zsh and fish, into DIR'
complete -c corral -n "__fish_corral_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "tree" -d 'Package recipes to root filesystems'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "image" -d 'OCI base images: build and inspect'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "dockerfiles" -d 'The curated Dockerfile library: lint, dependency graph, rebuild plans'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "compose" -d 'Atomic Host composes: signed OSTree commits on a release cadence'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "disk" -d 'Bootable Atomic Host disk images (qcow2, raw, raw.xz) of OSTree commits: GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "host" -d 'Atomic hosts: status, signed upgrades, rollbacks, boot health checks (`--sysroot DIR` works on a sysroot in a directory)'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "test" -d 'Run images\' tests in SELinux-labelled containers (own MCS categories per run); text, JSON and JUnit reports. Exit 0: all passed; 1: some failed; 2: could not run'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "key" -d 'Signing keys: generate cosign or GPG keys'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "sign" -d 'Sign images (cosign format, or GPG simple signing with a lookaside)'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "verify" -d 'Verify an image\'s signatures'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "policy" -d 'Write the policy.json and registries.d files clients need to require corral\'s signatures'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "mirror" -d 'The registry mirror: serve, garbage-collect and check its storage'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "portal" -d 'The community portal: submit templates for review'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "release" -d 'The whole release, resumably: base images, the curated library, Atomic Host streams, signatures and a report. Exit 0: released; 1: an image failed its tests (it was not published); 2: could not run'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "generate" -d 'Write man pages or shell completions generated from this command tree'
complete -c corral -n "__fish_corral_using_subcommand help; and not __fish_seen_subcommand_from tree image dockerfiles compose disk host test key sign verify policy mirror portal release generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from tree" -f -a "build" -d 'Install a recipe into a new root filesystem with dnf and rpm'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from tree" -f -a "plan" -d 'Show what a build would do: the dnf configuration, the rpm macros and the command line. Reads no repository'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from image" -f -a "build" -d 'Build an OCI image layout from a recipe or a ready tree'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from image" -f -a "inspect" -d 'Show the manifest, config and layers of an image in any transport skopeo knows (oci:, docker://, docker-daemon:, oci-archive:)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from image" -f -a "outdated" -d 'Which released base images need a respin: each one\'s SBOM against its repositories\' current packages and security advisories. Exit 0: all up to date; 1: some need a respin; 2: could not run'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from dockerfiles" -f -a "lint" -d 'Check Dockerfiles against the lint rules (docs/rules/); exits 1 on an error-severity finding'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from dockerfiles" -f -a "graph" -d 'Show the dependency graph of the library images'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from dockerfiles" -f -a "plan" -d 'List the library images to rebuild, bases first'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from dockerfiles" -f -a "build" -d 'Build library images through the Docker Engine API, bases first; exits 1 when any failed'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "run" -d 'Compose streams into signed commits with static deltas'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "plan" -d 'Each stream\'s head, next release day, and whether it is due'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "diff" -d 'Packages added, removed and changed between two commits of a ref'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "lock" -d 'Resolve a stream\'s packages and write them as its lockfile'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "export" -d 'Export a commit as an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from compose" -f -a "import" -d 'Import a commit from an OCI image in the ostree container format'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from disk" -f -a "build" -d 'Build a bootable disk image (GPT; GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64) of an OSTree commit, deployed with libostree'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "status" -d 'The deployments: booted, pending and rollback, with version, commit, date, origin, signature, pin, health and the package changes'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "upgrade" -d 'Fetch, verify and deploy the newest commit of the origin ref'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "deploy" -d 'Deploy a version or commit from the origin ref\'s history'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "rebase" -d 'Deploy the OS from a container image and make it the origin: ostree-remote-registry:REMOTE:HOST/REPO:TAG (the commit verified with the remote\'s GPG keys), ostree-image-signed:docker://HOST/REPO:TAG (the container signature verified with [images] in host.toml) or ostree-unverified-registry:HOST/REPO:TAG (with --insecure-unverified)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "rollback" -d 'Make the previous deployment the default; again swaps back'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "pin" -d 'Keep a deployment (by index) whatever the retention count says'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "unpin" -d 'Let retention drop a pinned deployment again'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "cleanup" -d 'Remove the pending and/or rollback deployments, unreferenced boot files and objects'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "remote" -d 'Remotes the updates come from'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "check" -d 'The boot health check: run /etc/corral/health.d, count failed boots, roll back after too many'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "auto" -d 'Deploy the newest commit once this host\'s rollout delay has passed, then reboot as the [updates] strategy allows (for the timer)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "steady" -d 'After a healthy boot, give the FleetLock reboot slot back'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "updates" -d 'The [updates] strategy, window, FleetLock id and what waits for a reboot'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "boot-complete" -d 'Mark this boot complete for GRUB\'s boot counter; when GRUB fell back to the previous deployment, make that the default (run by corral-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "grub-sync" -d 'Rewrite corral\'s GRUB menu from the boot entries and count the boots of a deployment finalized at shutdown (run after ostree-finalize-staged.service)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "finalize-check" -d 'Find out whether the deployment staged before the last reboot was finalized at shutdown; record a failure and deny its commit (run early in the boot, before ostree-boot-complete.service)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "generate" -d 'Generate a signing key: a cosign key pair (cosign.key, cosign.pub) or a GPG key whose public keyring is exported to OUT/corral-signing.gpg'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from sign" -f -a "image" -d 'Sign an image in a registry: cosign format with --key, GPG simple signing (uploaded to the lookaside) with --gpg-key'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from verify" -f -a "image" -d 'Verify an image\'s signature (exit 1 when it is not validly signed)'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "serve" -d 'Serve the registry (distribution-spec v1.1) and pull-through mirror'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "gc" -d 'Delete manifests and blobs no tag reaches'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "fsck" -d 'Check blobs, tags, manifests, references and links; exit 1 on damage'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "publish" -d 'Upload an OSTree repository or disk images into the replicas\' bucket'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from portal" -f -a "submit" -d 'Submit a template folder to a portal: packed as a tar.gz, uploaded through the portal\'s pages after signing in; prints the template\'s page. The same name again is the next revision'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages for corral and every subcommand, into DIR'
complete -c corral -n "__fish_corral_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Completion scripts for bash, zsh and fish, into DIR'
