//! SQS queues, EventBridge buses and rules.

use super::names::{bus_arn, queue_arn};
use super::props::{Props, Scope, json_document};
use super::{Loader, Placed, Result};
use crate::topology::{BusSpec, QueueSpec, Redrive, RuleSpec, RuleTarget, Topology};

impl Loader<'_> {
    pub(super) fn queue(&self, scope: &Scope, placed: &Placed) -> Result<QueueSpec> {
        let props = self.properties(
            scope,
            placed.resource,
            &[
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "FifoQueue",
                "RedrivePolicy",
            ],
        )?;
        let redrive = match json_document(&props, "RedrivePolicy")? {
            None => None,
            Some(policy) => {
                let policy = Props::of(scope, props.name("RedrivePolicy"), &policy)?;
                Some(Redrive {
                    dead_letter_arn: policy.required_string("deadLetterTargetArn")?,
                    max_receive_count: policy
                        .u32("maxReceiveCount")?
                        .ok_or_else(|| policy.required("maxReceiveCount"))?,
                })
            }
        };
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(QueueSpec {
            logical_id: placed.id.clone(),
            url: self.queue_url(&name),
            arn: queue_arn(&name),
            name,
            visibility_timeout_seconds: props.u32("VisibilityTimeout")?.unwrap_or(30),
            message_retention_seconds: props.u32("MessageRetentionPeriod")?,
            fifo: props.bool("FifoQueue")?.unwrap_or(false),
            redrive,
        })
    }

    pub(super) fn bus(&self, placed: &Placed) -> Result<BusSpec> {
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(BusSpec {
            logical_id: placed.id.clone(),
            arn: bus_arn(&name),
            name,
        })
    }

    /// `None` for a disabled rule: it exists in AWS but matches nothing.
    pub(super) fn rule(
        &self,
        scope: &Scope,
        placed: &Placed,
        topology: &Topology,
    ) -> Result<Option<RuleSpec>> {
        let props = self.properties(
            scope,
            placed.resource,
            &["State", "EventPattern", "ScheduleExpression", "Targets"],
        )?;
        if props.string("State")?.as_deref() == Some("DISABLED") {
            return Ok(None);
        }
        if props.has("ScheduleExpression") {
            return Err(scope.unsupported(
                "scheduled rules (ScheduleExpression) do not fire locally; run the target with `shop-local invoke`",
            ));
        }
        let pattern =
            json_document(&props, "EventPattern")?.ok_or_else(|| props.required("EventPattern"))?;
        let bus_name = self.rule_bus(placed.stack, placed.resource)?;
        if bus_name != "default" && !topology.buses.iter().any(|bus| bus.name == bus_name) {
            return Err(scope.invalid(format!(
                "EventBusName {bus_name} is not a bus the templates declare"
            )));
        }
        let mut targets = Vec::new();
        for target in props.objects("Targets")? {
            // These change what the target receives; ignoring them would deliver other messages
            // locally than in AWS.
            if let Some(key) = ["Input", "InputPath", "InputTransformer", "SqsParameters"]
                .into_iter()
                .find(|key| target.has(key))
            {
                return Err(scope.unsupported(format!(
                    "{}: the topology has no field for it, so targets get the event unchanged",
                    target.name(key)
                )));
            }
            targets.push(RuleTarget {
                id: target.required_string("Id")?,
                arn: target.required_string("Arn")?,
            });
        }
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(Some(RuleSpec {
            logical_id: placed.id.clone(),
            name,
            bus_name,
            pattern,
            targets,
        }))
    }
}

/// A queue's dead-letter queue must be declared too, and be FIFO exactly when the queue is.
pub(super) fn check_dead_letter_queue(
    scope: &Scope,
    placed: &Placed,
    topology: &Topology,
) -> Result<()> {
    let Some(queue) = topology
        .queues
        .iter()
        .find(|queue| queue.logical_id == placed.id)
    else {
        return Ok(());
    };
    let Some(redrive) = &queue.redrive else {
        return Ok(());
    };
    let dead_letter = topology
        .queues
        .iter()
        .find(|other| other.arn == redrive.dead_letter_arn)
        .ok_or_else(|| {
            scope.invalid(format!(
                "RedrivePolicy.deadLetterTargetArn {} is not a queue the templates declare",
                redrive.dead_letter_arn
            ))
        })?;
    if dead_letter.fifo != queue.fifo {
        return Err(scope.invalid(format!(
            "the dead-letter queue {} must be FIFO exactly when this queue is",
            dead_letter.logical_id
        )));
    }
    Ok(())
}
