# NixOS module: services.agent-server. It writes the same socket and service
# units as systemd/ in this repository (socket activation, Type=notify,
# watchdog, DynamicUser, the secret key as a credential, and the same
# hardening, checked against systemd/agent-server.service by .ci/run).
{ config, lib, pkgs, ... }:

let
  cfg = config.services.agent-server;
  json = pkgs.formats.json { };
  configFile = json.generate "agent-server-config.json" cfg.settings;
  stateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
  listenAddress =
    if lib.hasInfix ":" cfg.host
    then "[${cfg.host}]:${toString cfg.port}"
    else "${cfg.host}:${toString cfg.port}";

  # Identical to the [Service] hardening of systemd/agent-server.service; the
  # reasons for each setting are given there.
  hardening = {
    UMask = "0077";
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateIPC = true;
    PrivateUsers = true;
    PrivateMounts = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
    RestrictNamespaces = [ "user" "pid" "net" ];
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "seccomp" "chroot" ];
    SystemCallErrorNumber = "EPERM";
  };
in
{
  options.services.agent-server = {
    enable = lib.mkEnableOption "the OpenHands agent server (agent-server)";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The agent-server package (the flake's packages.default).";
    };

    host = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = ''
        Address the socket unit listens on. Loopback by default: publish the
        API through a reverse proxy, or set session keys (environmentFile)
        before listening on other interfaces.
      '';
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = 4004;
      description = "TCP port the socket unit listens on.";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/agent-server";
      description = ''
        State directory (conversations, workspace, bash events, worktrees).
        Must be under /var/lib: systemd creates it for the dynamic user.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/agent-server.env";
      description = ''
        File of OH_* variables kept out of the Nix store, typically the
        session API keys (OH_SESSION_API_KEYS_0=…) and previous secret keys.
        Its variables override the unit's own environment.
      '';
    };

    secretKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/agent-server-secret-key";
      description = ''
        File holding the key that encrypts secrets at rest. It is passed as
        the systemd credential `secret-key` (LoadCredential=), so it may be
        readable by root only. Without it secrets are not persisted.
      '';
    };

    settings = lib.mkOption {
      type = json.type;
      default = { };
      example = { max_concurrent_runs = 4; enable_browser = false; };
      description = ''
        Settings written to the JSON config file (see
        packaging/config.example.json for every key). Do not put secrets
        here: the file is in the world-readable Nix store.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open `port` in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/var/lib/" cfg.stateDir;
        message = "services.agent-server.stateDir must be under /var/lib/.";
      }
    ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

    systemd.sockets.agent-server = {
      description = "OpenHands agent server socket";
      wantedBy = [ "sockets.target" ];
      listenStreams = [ listenAddress ];
      socketConfig = {
        Accept = false;
        Backlog = 1024;
      };
    };

    systemd.services.agent-server = {
      description = "OpenHands agent server (REST and WebSocket APIs for AI-agent conversations)";
      requires = [ "agent-server.socket" ];
      after = [ "agent-server.socket" "network-online.target" ];
      wants = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      environment = {
        HOME = cfg.stateDir;
        OH_HOST = cfg.host;
        OH_PORT = toString cfg.port;
        OPENHANDS_AGENT_SERVER_CONFIG_PATH = "${configFile}";
        OH_CONVERSATIONS_PATH = "${cfg.stateDir}/conversations";
        OH_WORKSPACE_PATH = "${cfg.stateDir}/workspace";
        OH_BASH_EVENTS_DIR = "${cfg.stateDir}/bash_events";
        OH_CONVERSATION_WORKTREE_ROOT = "${cfg.stateDir}/worktrees";
      };
      serviceConfig = hardening // {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/agent-server";
        WatchdogSec = "30s";
        Restart = "on-failure";
        RestartSec = "2s";
        KillMode = "mixed";
        TimeoutStopSec = "30s";
        DynamicUser = true;
        StateDirectory = stateDirectory;
        StateDirectoryMode = "0700";
        WorkingDirectory = cfg.stateDir;
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
        LoadCredential = lib.mkIf (cfg.secretKeyFile != null) "secret-key:${cfg.secretKeyFile}";
      };
    };
  };
}
