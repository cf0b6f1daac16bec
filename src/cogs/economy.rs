//! The economy: balances, a daily payout with a streak bonus, payments between members, a
//! leaderboard, and moderators' grants and takes. Every change goes through the bank, keyed by
//! the invocation, so a command the platform delivers twice moves money once.

use super::{Ctx, community};
use crate::core::{
    Capability, Cog, Command, CommandError, CommandResult, CommandSpec, CommunityId, Member,
    ParamKind, Reply, UserId, duration,
};
use crate::services::Services;
use crate::services::audit::{Entry, Outcome};
use crate::services::bank::{Amount, BankError, Change, MAX_AMOUNT, MAX_BALANCE, Receipt};

/// How many members `/leaderboard` lists.
const TOP: u32 = 10;

pub fn cog() -> Cog<Services> {
    let amount = |spec: CommandSpec, description| {
        spec.param(
            "amount",
            description,
            ParamKind::Integer {
                min: 1,
                max: MAX_AMOUNT,
            },
        )
    };
    let to_member = |name, description, about| {
        CommandSpec::new(name, description)
            .param("user", about, ParamKind::User)
            .community_only()
    };
    Cog {
        name: "economy",
        description: "Balances, a daily payout, payments and a leaderboard",
        commands: vec![
            Command::new(
                CommandSpec::new("balance", "Show your balance, or a member's")
                    .optional(
                        "user",
                        "Whose balance (yours when left out)",
                        ParamKind::User,
                    )
                    .community_only(),
                balance,
            ),
            Command::new(
                CommandSpec::new("daily", "Collect your daily payout; days in a row pay more")
                    .community_only(),
                daily,
            ),
            Command::new(
                amount(
                    to_member("pay", "Give some of your money to a member", "Who to pay"),
                    "How much",
                ),
                pay,
            ),
            Command::new(
                CommandSpec::new("leaderboard", "The richest members here, and your place")
                    .community_only(),
                leaderboard,
            ),
            Command::new(
                amount(
                    to_member("grant", "Give a member money from nowhere", "Who gets it"),
                    "How much",
                )
                .requires(Capability::ManageSettings),
                grant,
            ),
            Command::new(
                amount(
                    to_member("take", "Take money away from a member", "From whom"),
                    "How much",
                )
                .requires(Capability::ManageSettings),
                take,
            ),
        ],
    }
}

/// The name of the money here; a community that cleared it gets the default back.
async fn currency(ctx: &Ctx, community: CommunityId) -> Result<String, CommandError> {
    let settings = ctx.state.settings.get(community).await.map_err(internal)?;
    Ok(match settings.value("economy_currency") {
        "" => "coins".to_owned(),
        name => name.to_owned(),
    })
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> CommandError {
    CommandError::Internal(Box::new(e))
}

/// `1,234,567 coins`
pub fn money(amount: i64, currency: &str) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + currency.len() + 2);
    if amount < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out.push(' ');
    out.push_str(currency);
    out
}

fn author(ctx: &Ctx) -> Member {
    let author = &ctx.invocation.author;
    Member {
        id: author.id,
        name: author.name.clone(),
        is_bot: false,
    }
}

/// The member named by `user`, who must be able to hold money.
async fn holder(ctx: &Ctx) -> Result<Member, CommandError> {
    let member = ctx.member(ctx.args.req_user("user")?).await?;
    if member.is_bot {
        return Err(CommandError::usage(format!(
            "{} is a bot and can't hold money",
            member.name
        )));
    }
    Ok(member)
}

fn amount(ctx: &Ctx) -> Result<Amount, CommandError> {
    // The spec bounds it already; a slash option is checked against the same bounds.
    Amount::new(ctx.args.req_int("amount")?).map_err(|e| CommandError::usage(e.to_string()))
}

/// The bank's refusal in the user's words. `payer` and `payee` are how the reply names them.
fn refused(e: BankError, currency: &str, payer: &str, payee: &str) -> CommandError {
    match e {
        BankError::BadAmount => CommandError::usage(e.to_string()),
        BankError::SelfPayment => CommandError::usage("you can't pay yourself"),
        BankError::Insufficient { balance } => {
            CommandError::usage(format!("{payer} only {}", money(balance, currency)))
        }
        BankError::Full { balance } => CommandError::usage(format!(
            "{payee} already has {}; nobody can hold more than {}",
            money(balance, currency),
            money(MAX_BALANCE, currency)
        )),
        BankError::TooSoon { .. } | BankError::Storage(_) => internal(e),
    }
}

async fn apply(ctx: &Ctx, community: CommunityId, change: Change) -> Result<Receipt, BankError> {
    ctx.state
        .bank
        .apply(community, ctx.invocation.id.clone(), change)
        .await
}

async fn balance(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let currency = currency(&ctx, community).await?;
    let (who, user): (String, UserId) = match ctx.args.user("user") {
        Some(user) => {
            let member = ctx.member(user).await?;
            (format!("{} has", member.name), member.id)
        }
        None => ("You have".into(), ctx.invocation.author.id),
    };
    let balance = ctx
        .state
        .bank
        .balance(community, user)
        .await
        .map_err(internal)?;
    Ok(Reply::text(format!("{who} {}.", money(balance, &currency))))
}

async fn daily(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let settings = ctx.state.settings.get(community).await.map_err(internal)?;
    let currency = currency(&ctx, community).await?;
    let base = settings
        .count("economy_daily")
        .and_then(|n| Amount::new(n).ok())
        .ok_or_else(|| CommandError::internal("economy_daily is not a valid amount"))?;
    let change = Change::Daily {
        to: author(&ctx),
        base,
    };
    let receipt = match apply(&ctx, community, change).await {
        Ok(receipt) => receipt,
        Err(BankError::TooSoon { ready }) => {
            // Whole seconds, rounded down: "23h59m59s" rather than a second-early "1d".
            let wait = (ready - ctx.state.clock.now()).num_seconds().max(1);
            let wait = std::time::Duration::from_secs(wait.unsigned_abs());
            return Err(CommandError::Denied(format!(
                "you already collected today's; come back in {}",
                duration::format(wait)
            )));
        }
        Err(e) => return Err(refused(e, &currency, "you have", "you")),
    };
    let bonus = receipt.amount - base.get();
    let streak = match (receipt.streak, bonus) {
        (days, 0) if days > 1 => format!(" (day {days} in a row)"),
        (days, bonus) if bonus > 0 => {
            format!(" (day {days} in a row: {} bonus)", money(bonus, &currency))
        }
        _ => String::new(),
    };
    Ok(Reply::text(format!(
        "You collected {}{streak}. You now have {}. Come back tomorrow.",
        money(receipt.amount, &currency),
        money(receipt.payee_balance.unwrap_or_default(), &currency),
    )))
}

async fn pay(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let currency = currency(&ctx, community).await?;
    let to = holder(&ctx).await?;
    let amount = amount(&ctx)?;
    let name = to.name.clone();
    let change = Change::Pay {
        from: author(&ctx),
        to,
        amount,
    };
    let receipt = apply(&ctx, community, change)
        .await
        .map_err(|e| refused(e, &currency, "you have", &name))?;
    Ok(Reply::text(format!(
        "You paid {name} {}. You have {} left.",
        money(amount.get(), &currency),
        money(receipt.payer_balance.unwrap_or_default(), &currency)
    )))
}

async fn leaderboard(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let currency = currency(&ctx, community).await?;
    let bank = &ctx.state.bank;
    let me = ctx.invocation.author.id;
    let top = bank.top(community, TOP).await.map_err(internal)?;
    let mut lines: Vec<String> = top
        .iter()
        .enumerate()
        .map(|(i, h)| format!("{}. {} - {}", i + 1, h.name, money(h.balance, &currency)))
        .collect();
    if lines.is_empty() {
        lines.push("Nobody has any money yet.".into());
    }
    let mine = match bank.rank(community, me).await.map_err(internal)? {
        Some(rank) => {
            let balance = bank.balance(community, me).await.map_err(internal)?;
            format!("You are #{rank} with {}.", money(balance, &currency))
        }
        None => format!("You have no {currency} yet; try {}.", ctx.typed("daily")),
    };
    lines.push(mine);
    Ok(Reply::text(lines.join("\n")).title("Leaderboard"))
}

/// A moderator's change, audited: a pending row before the bank is asked, its outcome after.
async fn audited(
    ctx: &Ctx,
    community: CommunityId,
    target: UserId,
    change: Change,
    detail: String,
) -> Result<Receipt, BankError> {
    let actor = ctx.invocation.author.id;
    let action = format!("economy.{}", change.kind());
    let entry = Entry::new(Some(community), actor, action)
        .target(target)
        .detail(detail);
    let id = ctx.state.audit.record(entry).await?;
    let result = apply(ctx, community, change).await;
    let outcome = match &result {
        Ok(receipt) if receipt.replayed => {
            Outcome::Failed("a repeat of an invocation already applied".into())
        }
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    // The money has moved or not either way; a lost outcome leaves the row pending, and the
    // ledger says which.
    if let Err(e) = ctx.state.audit.finish(id, outcome).await {
        tracing::warn!("economy: audit entry {} left pending: {e}", id.0);
    }
    result
}

async fn grant(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let currency = currency(&ctx, community).await?;
    let to = holder(&ctx).await?;
    let amount = amount(&ctx)?;
    let (name, target) = (to.name.clone(), to.id);
    let change = Change::Grant {
        actor: ctx.invocation.author.id,
        to,
        amount,
    };
    let detail = money(amount.get(), &currency);
    let receipt = audited(&ctx, community, target, change, detail)
        .await
        .map_err(|e| refused(e, &currency, "", &name))?;
    Ok(Reply::text(format!(
        "Granted {} to {name}, who now has {}.",
        money(amount.get(), &currency),
        money(receipt.payee_balance.unwrap_or_default(), &currency)
    )))
}

async fn take(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let currency = currency(&ctx, community).await?;
    let from = ctx.member(ctx.args.req_user("user")?).await?;
    let amount = amount(&ctx)?;
    let (name, target) = (from.name.clone(), from.id);
    let change = Change::Take {
        actor: ctx.invocation.author.id,
        from,
        amount,
    };
    let detail = money(amount.get(), &currency);
    let receipt = audited(&ctx, community, target, change, detail)
        .await
        .map_err(|e| refused(e, &currency, &format!("{name} has"), ""))?;
    Ok(Reply::text(format!(
        "Took {} from {name}, who now has {}.",
        money(amount.get(), &currency),
        money(receipt.payer_balance.unwrap_or_default(), &currency)
    )))
}
