# Evaluates nix/module.nix and nix/package.nix without nixpkgs (nothing can
# be fetched here): a stub `lib` with exactly what they use, stub `pkgs`
# functions, and a miniature module evaluation (option defaults, the values
# below, mkIf resolved). Used by tests/packaging/nix.sh:
#
#   nix-instantiate --eval --strict --json tests/packaging/nix-eval.nix
#
# The result names the failed checks (none, when all is well) and renders
# the generated socket and service units as INI text, so that
# systemd-analyze can verify and rate them like the units in systemd/.
let
  inherit (builtins) attrNames concatStringsSep filter hashString isAttrs isBool isList
    isString length mapAttrs match removeAttrs split stringLength substring toJSON;

  optionType = name: { _type = "optionType"; inherit name; };
  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  lib = {
    types = {
      bool = optionType "bool";
      str = optionType "str";
      port = optionType "port";
      path = optionType "path";
      package = optionType "package";
      nullOr = t: optionType "nullOr ${t.name}";
    };
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: {
      _type = "option";
      type = lib.types.bool;
      default = false;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    inherit hasPrefix;
    hasInfix = infix: s: length (split infix s) > 1;
    removePrefix = prefix: s:
      if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;
    any = pred: xs: builtins.any pred xs;
    cleanSourceWith = args: args;
    licenses.mit = "MIT";
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };

  # The package's arguments to buildRustPackage, as given.
  drv = import ../../nix/package.nix { inherit lib; rustPlatform.buildRustPackage = args: args; };
  root = toString ../..;
  keeps = file: drv.src.filter "${root}/${file}" "regular";

  # The JSON file a generate call would write, named by its content.
  json = {
    type = optionType "json";
    generate = name: value: { outPath = "/nix/store/${hashString "sha256" (toJSON value)}-${name}"; };
  };
  pkgs = { formats.json = _: json; };

  module = import ../../nix/module.nix;

  # Drops what mkIf turned off; store-path-like sets stay whole.
  resolve = v:
    if isAttrs v && (v._type or "") == "if" then
      (if v.condition then resolve v.content else null)
    else if isAttrs v && !(v ? outPath) then
      let r = mapAttrs (_: resolve) v;
      in removeAttrs r (filter (n: r.${n} == null) (attrNames r))
    else v;

  evaluate = values:
    let
      call = cfg: module { config.services.agent-server = cfg; inherit lib pkgs; };
      options = (call { }).options.services.agent-server;
      cfg = mapAttrs (_: o: o.default or null) options // values;
      resolved = resolve (call cfg).config;
    in { inherit options; config = if resolved == null then { } else resolved; };

  # The package lives where the staged root of systemd-verify.sh has the binary.
  package = { outPath = "/usr/local"; };
  full = evaluate {
    enable = true;
    inherit package;
    port = 4004;
    settings = { max_concurrent_runs = 3; enable_browser = false; };
    environmentFile = "/etc/agent-server/agent-server.env";
    secretKeyFile = "/etc/agent-server/secret-key";
    openFirewall = true;
  };
  minimal = evaluate { enable = true; inherit package; host = "::1"; port = 8004; };
  disabled = evaluate { inherit package; };

  service = full.config.systemd.services.agent-server;
  socket = full.config.systemd.sockets.agent-server;

  # A unit value as systemd reads it.
  render = v:
    if isBool v then (if v then "yes" else "no")
    else if isList v then concatStringsSep " " (map render v)
    else if isAttrs v then v.outPath
    else toString v;

  # [Service] of systemd/agent-server.service as (key, value) pairs.
  unitLines = filter isString (split "\n" (builtins.readFile ../../systemd/agent-server.service));
  serviceSection =
    let
      step = acc: line:
        if match "[[].*[]]" line != null then acc // { inService = line == "[Service]"; }
        else if acc.inService && match "[A-Za-z]+=.*" line != null then
          acc // { pairs = acc.pairs ++ [ (match "([A-Za-z]+)=(.*)" line) ]; }
        else acc;
    in (builtins.foldl' step { inService = false; pairs = [ ]; } unitLines).pairs;
  key = pair: builtins.elemAt pair 0;
  value = pair: builtins.elemAt pair 1;

  # Set differently by the module, by design: the package path, the secret
  # key and settings files are options, and it sets the environment as an
  # attribute set (compared separately below).
  ownedByModule = [ "ExecStart" "Environment" "EnvironmentFile" "LoadCredential" ];
  fileSettings = filter (p: !(builtins.elem (key p) ownedByModule)) serviceSection;
  fileEnvironment = map (p: match "([A-Z_]+)=(.*)" (value p))
    (filter (p: key p == "Environment") serviceSection);

  differences =
    map (p: "${key p}: systemd/ has ${value p}, the module ${render (service.serviceConfig.${key p} or "(unset)")}")
      (filter (p: render (service.serviceConfig.${key p} or null) != value p) fileSettings)
    ++ map (n: "${n}: only the module sets it")
      (filter (n: !(builtins.elem n (ownedByModule ++ map key fileSettings))) (attrNames service.serviceConfig))
    ++ map (e: "Environment ${key e}: systemd/ has ${value e}, the module ${service.environment.${key e} or "(unset)"}")
      (filter (e: key e != "OPENHANDS_AGENT_SERVER_CONFIG_PATH" && (service.environment.${key e} or null) != value e)
        fileEnvironment);

  checks = {
    "package name and version" = drv.pname == "agent-server"
      && drv.version == (builtins.fromTOML (builtins.readFile ../../Cargo.toml)).package.version;
    "package built from Cargo.lock, tests off" = toString drv.cargoLock.lockFile == "${root}/Cargo.lock"
      && drv.doCheck == false && drv.meta.mainProgram == "agent-server";
    "package source holds what cargo reads, nothing else" = keeps "Cargo.toml" && keeps "Cargo.lock"
      && keeps "src/main.rs" && keeps "src/tools/browser/js/state.js"
      && !(keeps "README.md") && !(keeps "target/release/agent-server") && !(keeps "srcfoo")
      && !(keeps "packaging/nginx/agent-server.conf");
    "option names" = attrNames full.options == [
      "enable" "environmentFile" "host" "openFirewall" "package" "port" "secretKeyFile" "settings" "stateDir"
    ];
    "option defaults" = disabled.options.port.default == 4004
      && disabled.options.host.default == "127.0.0.1"
      && disabled.options.stateDir.default == "/var/lib/agent-server"
      && disabled.options.settings.default == { }
      && disabled.options.openFirewall.default == false;
    "disabled module configures nothing" = disabled.config == { };
    "ExecStart" = service.serviceConfig.ExecStart == "/usr/local/bin/agent-server";
    "socket address" = socket.listenStreams == [ "127.0.0.1:4004" ]
      && minimal.config.systemd.sockets.agent-server.listenStreams == [ "[::1]:8004" ];
    "environment" = service.environment.OH_PORT == "4004"
      && service.environment.OH_HOST == "127.0.0.1"
      && service.environment.OH_CONVERSATIONS_PATH == "/var/lib/agent-server/conversations"
      && service.environment.OH_WORKSPACE_PATH == "/var/lib/agent-server/workspace"
      && service.environment.OH_BASH_EVENTS_DIR == "/var/lib/agent-server/bash_events";
    "settings file" = service.environment.OPENHANDS_AGENT_SERVER_CONFIG_PATH
      == "/nix/store/${hashString "sha256" (toJSON { max_concurrent_runs = 3; enable_browser = false; })}-agent-server-config.json";
    "secret key credential" = service.serviceConfig.LoadCredential == "secret-key:/etc/agent-server/secret-key"
      && !(minimal.config.systemd.services.agent-server.serviceConfig ? LoadCredential);
    "environment file" = service.serviceConfig.EnvironmentFile == "/etc/agent-server/agent-server.env"
      && !(minimal.config.systemd.services.agent-server.serviceConfig ? EnvironmentFile);
    "state directory" = service.serviceConfig.StateDirectory == "agent-server"
      && service.serviceConfig.WorkingDirectory == "/var/lib/agent-server";
    "firewall" = full.config.networking.firewall.allowedTCPPorts == [ 4004 ]
      && !(minimal.config ? networking && minimal.config.networking ? firewall
           && minimal.config.networking.firewall ? allowedTCPPorts);
    "stateDir outside /var/lib is refused" =
      !(builtins.head (evaluate { enable = true; inherit package; stateDir = "/srv/agent"; }).config.assertions).assertion;
    "same service settings as systemd/agent-server.service" = differences == [ ];
  };

  section = name: lines: "[${name}]\n" + concatStringsSep "" (map (l: l + "\n") lines);
  serviceUnit = concatStringsSep "\n" [
    (section "Unit" [
      "Description=${service.description}"
      "Requires=${render service.requires}"
      "After=${render service.after}"
      "Wants=${render service.wants}"
    ])
    (section "Service"
      (map (n: "Environment=\"${n}=${service.environment.${n}}\"") (attrNames service.environment)
        ++ map (n: "${n}=${render service.serviceConfig.${n}}") (attrNames service.serviceConfig)))
    (section "Install" [ "WantedBy=${render service.wantedBy}" ])
  ];
  socketUnit = concatStringsSep "\n" [
    (section "Unit" [ "Description=${socket.description}" ])
    (section "Socket"
      (map (a: "ListenStream=${a}") socket.listenStreams
        ++ map (n: "${n}=${render socket.socketConfig.${n}}") (attrNames socket.socketConfig)))
    (section "Install" [ "WantedBy=${render socket.wantedBy}" ])
  ];
in
{
  failed = filter (n: !checks.${n}) (attrNames checks);
  inherit differences serviceUnit socketUnit;
}
