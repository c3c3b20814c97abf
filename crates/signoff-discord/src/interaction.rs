//! What an interaction says, as signoff reads it: which request (the button's opaque id), who
//! pressed (their Discord user id, never a name they typed), and where (guild, channel,
//! message), recorded as the decision's cause.

use serenity::model::application::{
    ActionRowComponent, ComponentInteraction, ComponentInteractionDataKind, ModalInteraction,
};
use signoff_runtime::chat::Presser;

use crate::payload::JUSTIFICATION;

/// The channel Discord decisions are recorded with.
pub const CHANNEL: &str = "discord";

/// A press of a button, or the submit of the modal it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The button's id (a modal carries its button's).
    pub button: String,
    /// Who, and from where.
    pub presser: Presser,
    /// The justification typed in the modal.
    pub justification: Option<String>,
    /// The message pressed under: its channel and id.
    pub message: Option<(u64, u64)>,
    /// Its headline (the card's title), kept when the card is drawn again.
    pub subject: Option<String>,
    /// Pressed in a guild's channel (anyone may press), not a direct message.
    pub in_guild: bool,
}

/// Where a press came from, as a decision's cause:
/// `discord:guild/G/channel/C/message/M/user/U` (`dm` in place of the guild for a direct
/// message; no message for a command).
#[must_use]
pub fn origin(guild: Option<u64>, channel: u64, message: Option<u64>, user: u64) -> String {
    let place = guild.map_or_else(|| "dm".to_owned(), |g| format!("guild/{g}"));
    let message = message.map(|m| format!("/message/{m}")).unwrap_or_default();
    format!("{CHANNEL}:{place}/channel/{channel}{message}/user/{user}")
}

/// A button press; `None` for a component that is not a button.
#[must_use]
pub fn pressed(interaction: &ComponentInteraction) -> Option<Input> {
    if !matches!(interaction.data.kind, ComponentInteractionDataKind::Button) {
        return None;
    }
    let message = &interaction.message;
    Some(Input {
        button: interaction.data.custom_id.clone(),
        presser: presser(
            interaction.guild_id.map(|g| g.get()),
            interaction.channel_id.get(),
            Some(message.id.get()),
            interaction.user.id.get(),
            interaction.id.get(),
        ),
        justification: None,
        message: Some((message.channel_id.get(), message.id.get())),
        subject: message.embeds.first().and_then(|e| e.title.clone()),
        in_guild: interaction.guild_id.is_some(),
    })
}

/// The submit of a justification modal.
#[must_use]
pub fn submitted(interaction: &ModalInteraction) -> Input {
    let justification = interaction
        .data
        .components
        .iter()
        .flat_map(|row| &row.components)
        .find_map(|component| match component {
            ActionRowComponent::InputText(input) if input.custom_id == JUSTIFICATION => {
                Some(input.value.clone().unwrap_or_default())
            }
            _ => None,
        });
    let message = interaction.message.as_deref();
    Input {
        button: interaction.data.custom_id.clone(),
        presser: presser(
            interaction.guild_id.map(|g| g.get()),
            interaction.channel_id.get(),
            message.map(|m| m.id.get()),
            interaction.user.id.get(),
            interaction.id.get(),
        ),
        justification: Some(justification.unwrap_or_default()),
        message: message.map(|m| (m.channel_id.get(), m.id.get())),
        subject: message
            .and_then(|m| m.embeds.first())
            .and_then(|e| e.title.clone()),
        in_guild: interaction.guild_id.is_some(),
    }
}

fn presser(
    guild: Option<u64>,
    channel: u64,
    message: Option<u64>,
    user: u64,
    interaction: u64,
) -> Presser {
    Presser {
        channel: CHANNEL.to_owned(),
        user: user.to_string(),
        origin: origin(guild, channel, message, user),
        interaction: interaction.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_names_guild_channel_message_and_user() {
        assert_eq!(
            origin(Some(1), 2, Some(3), 4),
            "discord:guild/1/channel/2/message/3/user/4"
        );
        assert_eq!(
            origin(None, 2, Some(3), 4),
            "discord:dm/channel/2/message/3/user/4"
        );
        assert_eq!(
            origin(Some(1), 2, None, 4),
            "discord:guild/1/channel/2/user/4"
        );
    }
}
