{
  description = "agent-server: the OpenHands agent server as one static Rust binary";

  # Rust >= 1.88 (Cargo.toml's rust-version) is needed.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        # pkgsStatic: musl, statically linked, like the release build in .ci/run.
        agent-server = pkgs.pkgsStatic.callPackage ./nix/package.nix { };
        default = agent-server;
      });

      # `nix run` starts the server (flags after `--`, e.g. `nix run . -- --port 4004`).
      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.default}/bin/agent-server";
        };
      });

      # Everything .ci/run uses: the toolchain, the terminal tool's bash, the
      # browser tool's Chromium, and the packaging checks' tools.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            rustfmt
            clippy
            bashInteractive
            chromium
            chromedriver
            nginx
            curl
            python3
          ];
        };
      });

      # services.agent-server; its package defaults to this flake's.
      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./nix/module.nix ];
        services.agent-server.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };

      overlays.default = final: prev: {
        agent-server = final.pkgsStatic.callPackage ./nix/package.nix { };
      };
    };
}
