"""Slack glue: one module per surface. They parse payloads, call the operations in `bot/ops/`, render Block Kit.

The plug-in contract (how a feature adds itself to the bot)
-----------------------------------------------------------
1. A surface is a module with `register(app: slack_bolt.App, ctx: handlers.context.AppContext) -> None`.
   Add the module to `SURFACES` in bot/app.py (above "handlers.placeholders", which stays last).
   `ctx` carries `config`, `services` (typed: store, clients, notifier, launcher, tracker, ...), `workers`,
   `builder`, `client` (the bot's own WebClient, for work that outlives a request), `commands` and
   `home_sections`.

2. `/dcs` subcommands live in `ctx.commands` (handlers/commands.py). From `register`:

       ctx.commands.add(Subcommand("launch", "Launch a cluster running an image.", "launch NAME [workers=N]",
                                   Role.BUILDER, run_launch))

   `run_launch(cmd: CommandContext)` runs BEFORE the ack, so it must return in milliseconds. `cmd` has
   `user_id`, `channel_id`, `args` (positionals after the name), `options` (key=value, keys lower-cased),
   `text`, `trigger_id`, `response_url`, `claim_key` (same for a Slack retry of the same command),
   `retry_num`, `app` (the ctx) and helpers: `cmd.reply(content, public=False)` (acks the first time,
   then posts through the response_url), `cmd.ack()` (ack with no message, e.g. before `views.open`),
   `cmd.claim(kind)` (`store.claim(claim_key, kind)`: False for a retry) and
   `cmd.reject_unknown(allowed_options, max_args)`. `content` is `{"text", "blocks"}`; build it with
   handlers/blocks.py (`notice`, `problem`, `message`, `section`, ...). The dispatcher has already checked
   the subcommand's role (denials are ephemeral, name the role and are audited); raise `DcsError` for a
   friendly error; any other exception is logged with a reference id the user sees. Adding a name that a
   placeholder holds (launch, enable, ratelimit) replaces it; any other duplicate raises unless
   `replace=True`. Two-word names ("image add") work.

3. Long work goes to the bot's pool: `ctx.workers.submit(key, fn, *args)` returns a `Ticket` with
   `position` (0 = running now, n = n-th in line) and `duplicate` (the key is already queued or running);
   tell the user where the job stands. `ctx.workers.quick(fn, ...)` is for short Slack I/O after the ack.
   `QueueFull` (a DcsError) means the line is too long.

4. Idempotency: claim before starting anything (`ctx.store.claim(key, kind)`; commands use
   `cmd.claim_key`, buttons `handlers.actions.button_key(body)`), then `store.set_claim_ref(key, id)` so a
   retry can say what it refers to. Builds: call `handlers.builds.start_build(ctx, image, push=...,
   requester=..., channel=..., claim_key=...)`, which claims, queues, posts and updates the progress
   message, and returns the reply for the user.

5. Buttons: the final build message carries "Launch cluster" (action_id `launch_cluster`, value
   `handlers.blocks.LaunchButton(image, build).encode()` = `{"image": NAME, "build": ID}`) and "Show log".
   `app.action("launch_cluster")` in your surface wins over the placeholder. Wrap listeners with
   `handlers.actions.guarded(ctx, name)` to get ack + friendly errors + apology-with-reference.

6. App Home is `ctx.home_sections`, a list of `HomeSection(name, build)` with `build(ctx, user_id) ->
   blocks` (return [] to hide). Defaults: catalog, builds, launches, pull_budget. Replace or add with
   `ctx.set_home_section(name, builder, before=None)`; refresh a user's Home with
   `handlers.home.publish_home(ctx, user_id)`.

7. Background work started with the bot (scheduler, watches) lives in `jobs/`: append its starter to
   `bot.__main__.BACKGROUND_STARTERS`: `starter(services, workers, args) -> stop | None`; honour
   `args.no_scheduler`. Jobs report through `services.notifier` (bot/domain/notify.py), never through here.

8. Audit every state-changing action: `ctx.store.audit(actor=user_id, action="launch.request",
   target=..., outcome=..., detail=...)`; never put a secret in `detail`.
"""
