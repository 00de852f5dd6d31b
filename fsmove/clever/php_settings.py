"""Steps 2-5 of a PHP re-creation: the new app gets the old one's **env** (on stdin, never
in an argv), **links** (add-ons and app dependencies), **scale** and **options**, each
only where it differs, then read back and checked."""

from __future__ import annotations

import json

from fsmove.clever.clever_tool import CleverCommand, CleverError
from fsmove.clever.php_run import PhpRun
from fsmove.clever.php_survey import (
    OPTION_IDS,
    AppView,
    OldApp,
    dependencies,
    linked_addons,
    read_app,
)
from fsmove.exitcodes import ExitCode


class SettingsSteps(PhpRun):
    def _env(self) -> ExitCode:
        old = self.old
        assert old is not None
        pairs = [{"name": k, "value": v} for k, v in old.env]
        command = CleverCommand(("env", "import", "--json", "--app", self.new_app),
                                mutating=True)
        if self.req.dry_run:
            self.say(f"would run: {command.display} < {len(pairs)} variables of "
                     f"{old.view.name} as JSON on stdin")
            return ExitCode.OK
        self.cli.run(command, parse_json=False, input_text=json.dumps(pairs))
        self.say(f"  {len(pairs)} variables copied")
        return ExitCode.OK

    def _links(self) -> ExitCode:
        old = self.old
        assert old is not None
        have_addons: set[str] = set()
        have_apps: set[str] = set()
        if self.st.new_app is not None:
            have_addons = {a.id for a in linked_addons(self.api, self.owner, self.new_app)}
            have_apps = {i for i, _n in dependencies(self.api, self.owner, self.new_app)}
        linked: list[str] = []
        for addon in old.addons_to_link:
            if addon.id not in have_addons:
                self.cli.run(CleverCommand(("service", "link-addon", addon.id, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                linked.append(addon.name)
        for dep_id, name in old.dependencies:
            if dep_id not in have_apps:
                self.cli.run(CleverCommand(("service", "link-app", dep_id, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                linked.append(name)
        if linked and not self.req.dry_run:
            self.say(f"  linked {', '.join(linked)}")
        return ExitCode.OK

    def _new_view(self) -> AppView | None:
        return None if self.st.new_app is None else read_app(self.api, self.owner,
                                                             self.st.new_app)

    def _scale(self) -> ExitCode:
        old = self.old
        assert old is not None
        new = self._new_view()
        wanted = old.view.scaling
        args = wanted.scale_args(new.scaling) if new else wanted.all_args()
        if args:
            self.cli.run(CleverCommand(("scale", "--app", self.new_app, *args),
                                       mutating=True), parse_json=False)
            if not self.req.dry_run:
                self.say(f"  scaled: {' '.join(args)}")
        return ExitCode.OK

    def _options(self) -> ExitCode:
        old = self.old
        assert old is not None
        new = self._new_view()
        for option in OPTION_IDS:
            value = old.view.options[option]
            if new is None and value == "false" and option == "task":
                continue
            if new is None or new.options[option] != value:
                self.cli.run(CleverCommand(("config", "set", option, value, "--app",
                                            self.new_app), mutating=True), parse_json=False)
                if not self.req.dry_run:
                    self.say(f"  set {option} {value}")
        if not self.req.dry_run:
            self._check_settings(old)
        return ExitCode.OK

    def _check_settings(self, old: OldApp) -> None:
        new = self._new_view()
        assert new is not None
        differ = [k for k in OPTION_IDS if new.options[k] != old.view.options[k]]
        if new.scaling != old.view.scaling:
            differ.append("scaling")
        if differ:
            raise CleverError(f"the new app {new.id} still differs from the old one in "
                              f"{', '.join(differ)} after `clever scale`/`config set`")
