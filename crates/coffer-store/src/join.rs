//! Running several futures on the current task, in order.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Polls every future on the current task, in the order given, until all have finished; returns their
/// outputs in that order. Each future is first polled in list order, so requests they send go out in
/// that order: a backend pipelines statements through this (one round trip, run in sequence), and the
/// conformance suite races concurrent writes with it.
pub async fn join_in_order<F: Future + ?Sized>(mut futures: Vec<Pin<Box<F>>>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    // Every slot is filled once the poll above is ready.
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_come_back_in_input_order_and_first_polls_run_in_order() {
        let started = std::sync::Mutex::new(Vec::new());
        let futures: Vec<Pin<Box<dyn Future<Output = usize> + '_>>> = (0..5usize)
            .map(|i| {
                let started = &started;
                Box::pin(async move {
                    started.lock().unwrap().push(i);
                    // The later ones finish first.
                    for _ in 0..(5 - i) {
                        tokio::task::yield_now().await;
                    }
                    i * 10
                }) as Pin<Box<dyn Future<Output = usize> + '_>>
            })
            .collect();
        assert_eq!(join_in_order(futures).await, vec![0, 10, 20, 30, 40]);
        assert_eq!(*started.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn nothing_to_join_is_an_empty_answer() {
        let none: Vec<Pin<Box<std::future::Ready<u8>>>> = Vec::new();
        assert!(join_in_order(none).await.is_empty());
    }
}
