# The agent-server package, built from Cargo.lock. Called from flake.nix
# through pkgsStatic, which makes it one static musl executable.
{ lib, rustPlatform }:

let
  cargoToml = builtins.fromTOML (builtins.readFile ../Cargo.toml);
  # Only what the build reads: a change to docs or packaging files does not
  # rebuild the binary.
  sources = [ "Cargo.toml" "Cargo.lock" "src" ];
  keep = path:
    let relative = lib.removePrefix (toString ../. + "/") (toString path);
    in lib.any (s: relative == s || lib.hasPrefix (s + "/") relative) sources;
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  version = cargoToml.package.version;

  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type: keep path;
  };
  cargoLock.lockFile = ../Cargo.lock;

  # The test suite needs bash in a PTY, Chromium, nginx and loopback
  # networking, which the Nix sandbox does not offer; .ci/run runs it.
  doCheck = false;

  meta = {
    description = cargoToml.package.description;
    license = lib.licenses.mit;
    mainProgram = "agent-server";
    platforms = lib.platforms.linux;
  };
}
