//! `youcode user create`.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::Context as _;

use crate::auth::hash_password;
use crate::config::{PasswordCost, UserCreateArgs};
use crate::db::{Db, DbError, NewUser};
use crate::domain::{Role, fields};

pub async fn create(args: UserCreateArgs) -> anyhow::Result<()> {
    let email = fields::email(&args.email).map_err(message)?;
    let name = fields::display_name(&args.name).map_err(message)?;
    let password = match args.password {
        Some(password) => password,
        None => ask_password()?,
    };
    fields::password(&password).map_err(message)?;
    let db = Db::connect(&args.database.database_url).await?;
    db.migrate().await?;
    let role = if args.admin { Role::Admin } else { Role::User };
    let password_hash = hash_password(&password, PasswordCost::Standard);
    let user = db
        .create_user(NewUser {
            email,
            name,
            image: None,
            role,
            password_hash,
        })
        .await
        .map_err(|error| match error {
            DbError::Conflict => anyhow::anyhow!("{} is already registered", args.email),
            other => other.into(),
        })?;
    println!(
        "created {} {} ({})",
        user.role.as_str(),
        user.email,
        user.id
    );
    Ok(())
}

fn message(error: fields::FieldError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// Asks for the password without echoing it on a terminal; reads a line from standard input
/// otherwise (scripts).
fn ask_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("password: ")
            .context("cannot read the password from the terminal");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
